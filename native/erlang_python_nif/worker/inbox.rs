//! Who reads the port, when more than one thread waits for it.
//!
//! The main thread reads while it is idle or awaits a callback; a Python
//! thread that calls Erlang (`erlang.call`) awaits its answer too. Only one
//! thread reads at a time (the reader role); what it reads for another
//! thread it leaves here and wakes them, keeping the role meanwhile (a
//! thread woken for its answer must find it here, not wait in `read`):
//!
//! * a callback reply goes to the thread awaiting it (a reply nobody awaits
//!   any more, of a callback that gave up, is dropped);
//! * a request read by a Python thread goes to the main thread when that
//!   one is waiting here (requests run on the main thread, where a timeout's
//!   SIGINT lands); when the main thread is busy running Python (joining
//!   the very thread that reads, say), the reader serves it itself, as the
//!   main thread serves requests that arrive while it awaits a callback.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::protocol::{self, Frame};

struct Inbox {
    /// A thread is in `protocol::read`.
    reading: bool,
    /// The main thread waits in [`next`] for frames.
    main_waiting: bool,
    /// Callback ids whose answers some thread awaits.
    awaited: Vec<u64>,
    /// Callback replies read by another thread than the one awaiting them.
    replies: Vec<(u64, Frame)>,
    /// Requests a Python thread read, for the main thread.
    requests: VecDeque<Frame>,
    /// Threads waiting on [`CHANGED`]: with none, nobody is woken (a wake
    /// is a system call, on the path of every request).
    waiting: usize,
}

static INBOX: Mutex<Inbox> = Mutex::new(Inbox {
    reading: false,
    main_waiting: false,
    awaited: Vec::new(),
    replies: Vec::new(),
    requests: VecDeque::new(),
    waiting: 0,
});

/// Something in the inbox changed: the reader role is free, or a frame was
/// left for another thread.
static CHANGED: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, Inbox> {
    INBOX.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the calling thread gets next.
pub(crate) enum Next {
    /// It read this from the port (None: the VM closed it).
    Read(std::io::Result<Option<Frame>>),
    /// The answer to the callback it awaits, read by another thread.
    Reply(Frame),
    /// A request another thread read, for the main thread.
    Request(Frame),
}

/// Waits (without the GIL) for the answer to callback `awaiting`, for a
/// request left for the main thread (`main`), or for the reader role, and
/// then reads one frame.
pub(crate) fn next(awaiting: Option<u64>, main: bool) -> Next {
    let mut inbox = lock();
    loop {
        if let Some(id) = awaiting {
            if let Some(at) = inbox.replies.iter().position(|(i, _)| *i == id) {
                return Next::Reply(inbox.replies.swap_remove(at).1);
            }
        }
        if main {
            if let Some(request) = inbox.requests.pop_front() {
                return Next::Request(request);
            }
        }
        if !inbox.reading {
            break;
        }
        inbox.main_waiting |= main;
        inbox.waiting += 1;
        inbox = CHANGED.wait(inbox).unwrap_or_else(|e| e.into_inner());
        inbox.waiting -= 1;
        if main {
            inbox.main_waiting = false;
        }
    }
    inbox.reading = true;
    drop(inbox);
    loop {
        let read = protocol::read();
        let mut inbox = lock();
        if let Ok(Some(frame)) = &read {
            match reply_id(frame) {
                // Another thread's answer: left for it while this thread
                // still reads, so it never waits in `read` for a frame
                // that came already.
                Some(id) if Some(id) != awaiting => {
                    if inbox.awaited.contains(&id) {
                        if let Ok(Some(frame)) = read {
                            inbox.replies.push((id, frame));
                        }
                        wake(inbox);
                    }
                    continue;
                }
                _ => {}
            }
        }
        // Anything else is this thread's to handle, without the reader role
        // (a request it serves may await callbacks of its own).
        inbox.reading = false;
        wake(inbox);
        return Next::Read(read);
    }
}

/// Wakes the threads waiting for a change, if any, after unlocking.
fn wake(inbox: MutexGuard<'static, Inbox>) {
    let anyone = inbox.waiting > 0;
    drop(inbox);
    if anyone {
        CHANGED.notify_all();
    }
}

/// The callback id of a callback reply.
fn reply_id(frame: &[u8]) -> Option<u64> {
    match protocol::parse(frame) {
        Ok(protocol::Incoming::CallbackReply { id, .. }) => Some(id),
        _ => None,
    }
}

/// Callback `id`'s answer will be awaited: call before sending it.
pub(crate) fn await_reply(id: u64) {
    lock().awaited.push(id);
}

/// Callback `id`'s answer is no longer awaited (it came, or its thread
/// gave up).
pub(crate) fn forget(id: u64) {
    let mut inbox = lock();
    inbox.awaited.retain(|&i| i != id);
    inbox.replies.retain(|(i, _)| *i != id);
}

/// Leaves callback `id`'s answer for the thread awaiting it; drops it when
/// none does.
pub(crate) fn leave_reply(id: u64, frame: Frame) {
    let mut inbox = lock();
    if inbox.awaited.contains(&id) {
        inbox.replies.push((id, frame));
        wake(inbox);
    }
}

/// Leaves a request for the main thread when it waits for one; gives it
/// back when the main thread is busy, for the caller to serve.
pub(crate) fn hand_to_main(frame: Frame) -> Option<Frame> {
    let mut inbox = lock();
    if inbox.main_waiting {
        inbox.requests.push_back(frame);
        wake(inbox);
        None
    } else {
        Some(frame)
    }
}
