//! [`PoolList`]: a singly linked list of records in pool, FIFO, for the driver's per-handle and
//! per-registration records. It lives behind the device's spin locks; its operations never
//! allocate or free, so they may run under a lock: [`push_back`](PoolList::push_back) takes a
//! node allocated beforehand, and [`take_if`](PoolList::take_if) moves nodes to another list
//! that the caller drops after releasing the lock (a record that embeds a timer must be dropped
//! at PASSIVE_LEVEL).

use csq::{NtStatus, PoolBox};

/// A list node in its own pool block.
pub struct Node<T> {
    next: Option<PoolBox<Node<T>>>,
    item: T,
}

/// A node allocated ahead of the lock that protects the list.
pub struct NewNode<T>(PoolBox<Node<T>>);

impl<T> NewNode<T> {
    /// Allocates a node for `item`.
    ///
    /// IRQL: <= DISPATCH_LEVEL.
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES` (`item` is dropped).
    pub fn new(tag: u32, item: T) -> Result<NewNode<T>, NtStatus> {
        PoolBox::try_new(tag, Node { next: None, item }).map(NewNode)
    }
}

/// A FIFO list of pool nodes.
pub struct PoolList<T> {
    head: Option<PoolBox<Node<T>>>,
}

impl<T> Default for PoolList<T> {
    fn default() -> Self {
        PoolList { head: None }
    }
}

impl<T> PoolList<T> {
    /// An empty list.
    pub const fn new() -> Self {
        PoolList { head: None }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Appends a node (oldest first).
    pub fn push_back(&mut self, node: NewNode<T>) {
        let mut slot = &mut self.head;
        while let Some(n) = slot {
            slot = &mut n.next;
        }
        *slot = Some(node.0);
    }

    /// The items, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        let mut cur = self.head.as_deref();
        core::iter::from_fn(move || {
            let n = cur?;
            cur = n.next.as_deref();
            Some(&n.item)
        })
    }

    /// Moves every node whose item satisfies `pred` to a new list, keeping their order.
    pub fn take_if(&mut self, mut pred: impl FnMut(&T) -> bool) -> PoolList<T> {
        let mut taken = PoolList::new();
        let mut tail = &mut taken.head;
        let mut rest = self.head.take();
        let mut kept = &mut self.head;
        while let Some(mut n) = rest {
            rest = n.next.take();
            if pred(&n.item) {
                tail = &mut tail.insert(n).next;
            } else {
                kept = &mut kept.insert(n).next;
            }
        }
        taken
    }
}

impl<T> Drop for PoolList<T> {
    fn drop(&mut self) {
        // Iteratively, so that a long list does not recurse once per node.
        let mut cur = self.head.take();
        while let Some(mut n) = cur {
            cur = n.next.take();
        }
    }
}
