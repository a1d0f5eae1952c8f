//! [`Slots`]: a bounded list that keeps insertion order, for the records a device tracks (per
//! handle, per registration). It lives inside a [`SpinLock`](csq::SpinLock) in the device
//! extension and holds [`PoolArc`](csq::PoolArc)s, so that taking an entry out under the lock
//! and dropping it after the lock is released is the natural shape.

/// At most `N` values, oldest first.
#[derive(Debug)]
pub(crate) struct Slots<T, const N: usize> {
    items: [Option<T>; N],
    len: usize,
}

impl<T, const N: usize> Slots<T, N> {
    /// An empty list.
    pub(crate) const fn new() -> Self {
        Slots {
            items: [const { None }; N],
            len: 0,
        }
    }

    /// Appends `value`, or gives it back when the list is full.
    pub(crate) fn push(&mut self, value: T) -> Result<(), T> {
        if self.len == N {
            return Err(value);
        }
        self.items[self.len] = Some(value);
        self.len += 1;
        Ok(())
    }

    /// The values, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items[..self.len].iter().flatten()
    }

    /// Takes out the oldest value that `pred` accepts; the others keep their order.
    pub(crate) fn take_first(&mut self, pred: impl Fn(&T) -> bool) -> Option<T> {
        let i = self.iter().position(pred)?;
        let value = self.items[i].take();
        self.items[i..self.len].rotate_left(1);
        self.len -= 1;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn keeps_order_and_refuses_when_full() {
        let mut s = Slots::<u32, 3>::new();
        for v in [1, 2, 3] {
            s.push(v).unwrap();
        }
        assert_eq!(s.push(4), Err(4));
        assert_eq!(s.take_first(|&v| v % 2 == 0), Some(2));
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [1, 3]);
        s.push(5).unwrap();
        assert_eq!(s.take_first(|&v| v > 2), Some(3));
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [1, 5]);
        assert_eq!(s.take_first(|&v| v == 9), None);
    }
}
