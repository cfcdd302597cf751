//! Descriptor readiness as messages, for `ErlangPython.EventQueue`.
//!
//! `fd_watch_new` registers interest in one direction of a descriptor; one
//! watcher thread (started on first use, never a BEAM scheduler) polls
//! every armed watch and, when one is ready, disarms it and sends its owner
//! `{:erlang_python_fd_ready, callback_id, :read | :write}`. The owner
//! re-arms it (`fd_watch_arm`) once it has handled the event, so a
//! descriptor that stays readable produces one message per round, not a
//! flood.
//!
//! Releasing a watch never closes its descriptor: `ErlangPython.EventQueue`
//! closes it afterwards through `fd::ownership`, whose rule (never one of
//! the VM's own descriptors) is the only one; small reads and writes and
//! test descriptors are `fd::io`'s.
//!
//! Why a thread of its own rather than the VM's poller (`fd::watch`, which
//! reactors use): `enif_select` requires its registration to be stopped
//! before the descriptor is closed, or the VM's poller keeps a stale entry
//! that a reused number (a new socket of `gen_tcp`, say) then collides
//! with. Reactors own their descriptors and stop before closing; a queue's
//! callers (the original's `py_nif:add_reader/3` and asyncio code) close
//! theirs however they like, with or without removing the watch first.
//! Here a closed descriptor only ends its watch (`POLLNVAL`). Besides, a
//! queue keeps watches per direction and callback, paused and resumed from
//! any process, where `fd::watch` holds one registration per descriptor
//! whose stop ends both directions. Carrying these watches on
//! `enif_select` would need per-direction cancelling
//! (`ERL_NIF_SELECT_CANCEL`), a map from `{select, ...}` messages back to
//! callback ids, and a stop on every close path; until then both
//! mechanisms stay, each with one user.

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rustler::{Encoder, Env, LocalPid, OwnedEnv, ResourceArc};

use crate::{atoms, messaging, panics};

/// Interest in one direction of one descriptor.
pub(crate) struct FdWatch {
    fd: RawFd,
    write: bool,
    callback_id: u64,
    owner: LocalPid,
    state: Mutex<WatchState>,
}

struct WatchState {
    armed: bool,
    /// Stopped by its user (`fd_watch_arm(watch, false)`): not re-armed
    /// after an event until started again.
    paused: bool,
    /// Released (removed or closed): never armed again.
    released: bool,
}

#[rustler::resource_impl]
impl rustler::Resource for FdWatch {}

impl FdWatch {
    fn lock(&self) -> MutexGuard<'_, WatchState> {
        // Two booleans: consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The watcher thread's list and the pipe that interrupts its poll.
struct Watcher {
    watches: Mutex<Vec<ResourceArc<FdWatch>>>,
    wake_read: RawFd,
    wake_write: RawFd,
}

fn watcher() -> Option<&'static Arc<Watcher>> {
    static WATCHER: OnceLock<Option<Arc<Watcher>>> = OnceLock::new();
    WATCHER
        .get_or_init(|| {
            let (wake_read, wake_write) = new_pipe().ok()?;
            let watcher = Arc::new(Watcher {
                watches: Mutex::new(Vec::new()),
                wake_read,
                wake_write,
            });
            let running = watcher.clone();
            std::thread::Builder::new()
                .name("erlang_python_fd_watch".into())
                .spawn(move || loop {
                    // A panic in one round must not end the thread.
                    let _ = panics::catch(|| poll_round(&running));
                })
                .ok()?;
            Some(watcher)
        })
        .as_ref()
}

impl Watcher {
    fn watches(&self) -> MutexGuard<'_, Vec<ResourceArc<FdWatch>>> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the watcher rebuild its poll set.
    fn ring(&self) {
        let byte = 1u8;
        // SAFETY: writes one byte from a valid local to our own pipe; a full
        // pipe already wakes the poll, so a failed write loses nothing.
        let _ = unsafe { libc::write(self.wake_write, (&byte as *const u8).cast(), 1) };
    }

    fn add(&self, watch: ResourceArc<FdWatch>) {
        self.watches().push(watch);
        self.ring();
    }
}

/// One poll over the armed watches, then their messages.
fn poll_round(watcher: &Watcher) {
    let armed: Vec<ResourceArc<FdWatch>> = {
        let mut watches = watcher.watches();
        watches.retain(|w| !w.lock().released);
        watches.iter().filter(|w| w.lock().armed).cloned().collect()
    };
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(armed.len() + 1);
    fds.push(libc::pollfd {
        fd: watcher.wake_read,
        events: libc::POLLIN,
        revents: 0,
    });
    for watch in &armed {
        fds.push(libc::pollfd {
            fd: watch.fd,
            events: if watch.write {
                libc::POLLOUT
            } else {
                libc::POLLIN
            },
            revents: 0,
        });
    }
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
    if ready <= 0 {
        return; // EINTR: go round again
    }
    if fds[0].revents != 0 {
        let mut sink = [0u8; 64];
        // SAFETY: reads into a valid local buffer from our own non-blocking pipe.
        while unsafe { libc::read(watcher.wake_read, sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
    }
    let mut owned = OwnedEnv::new();
    for (watch, polled) in armed.iter().zip(&fds[1..]) {
        if polled.revents == 0 {
            continue;
        }
        {
            let mut state = watch.lock();
            // Disarmed or released while we polled: the event is stale.
            if !state.armed || state.released {
                continue;
            }
            state.armed = false;
            if polled.revents & libc::POLLNVAL != 0 {
                state.released = true; // not an open descriptor
            }
        }
        let direction = if watch.write {
            atoms::write()
        } else {
            atoms::read()
        };
        let _ = messaging::build_and_send(&mut owned, &watch.owner, |env| {
            Ok::<_, ()>(
                (
                    atoms::erlang_python_fd_ready(),
                    watch.callback_id,
                    direction,
                )
                    .encode(env),
            )
        });
    }
}

fn new_pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

// ---------------------------------------------------------------------------
// Watches (NIFs, registered in lib.rs)

/// Watches `fd` for reading (`write: false`) or writing; the caller gets
/// the readiness messages. Armed at once.
#[rustler::nif]
fn fd_watch_new(
    env: Env<'_>,
    fd: i32,
    write: bool,
    callback_id: u64,
) -> Result<ResourceArc<FdWatch>, rustler::Error> {
    if fd < 0 {
        return Err(rustler::Error::BadArg);
    }
    let watcher = watcher().ok_or(rustler::Error::RaiseAtom("no_watcher"))?;
    let watch = ResourceArc::new(FdWatch {
        fd,
        write,
        callback_id,
        owner: env.pid(),
        state: Mutex::new(WatchState {
            armed: true,
            paused: false,
            released: false,
        }),
    });
    watcher.add(watch.clone());
    Ok(watch)
}

/// Starts (`true`) or stops a watch: `true` unless it was released.
#[rustler::nif]
fn fd_watch_arm(watch: ResourceArc<FdWatch>, armed: bool) -> bool {
    let mut state = watch.lock();
    if state.released {
        return false;
    }
    state.armed = armed;
    state.paused = !armed;
    drop(state);
    if let Some(watcher) = watcher() {
        watcher.ring();
    }
    true
}

/// Re-arms a watch after its event was handled, unless it was stopped or
/// released meanwhile.
#[rustler::nif]
fn fd_watch_rearm(watch: ResourceArc<FdWatch>) -> bool {
    let mut state = watch.lock();
    if state.released || state.paused {
        return false;
    }
    state.armed = true;
    drop(state);
    if let Some(watcher) = watcher() {
        watcher.ring();
    }
    true
}

/// The watch's queue and callback id, and whether it still reports events
/// (neither paused nor released): `{owner, callback_id, live}`.
#[rustler::nif]
fn fd_watch_info(watch: ResourceArc<FdWatch>) -> (LocalPid, u64, bool) {
    let state = watch.lock();
    (
        watch.owner,
        watch.callback_id,
        !state.paused && !state.released,
    )
}

/// Stops the watch for good; the descriptor stays open. Returns it the
/// first time (so the caller may close it once, and never a number reused
/// since), `nil` after.
#[rustler::nif]
fn fd_watch_release(watch: ResourceArc<FdWatch>) -> Option<RawFd> {
    let first = {
        let mut state = watch.lock();
        let first = !state.released;
        state.armed = false;
        state.released = true;
        first
    };
    if let Some(watcher) = watcher() {
        watcher.ring();
    }
    first.then_some(watch.fd)
}
