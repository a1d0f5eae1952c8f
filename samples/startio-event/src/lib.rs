//! The timer-event driver on IoStartPacket/StartIo (issue 4).
