//! The worker's end of the port: `{:packet, 4}` frames on descriptor 0 (from
//! the VM) and on a private copy of descriptor 1 (to the VM), each frame
//! one message in the external term format.
//!
//! The message format is declared here, once; `ErlangPython.Isolated.Protocol`
//! is the Elixir side.
//!
//! | direction | message |
//! |-----------|---------|
//! | VM -> worker | `{:call, id, caller_pid, request}` (`request` as `ErlangPython.Request` builds it) |
//! | VM -> worker | `{:callback_reply, callback_id, {:ok, term} \| {:error, text}}` |
//! | VM -> worker | `{:release, [handle_id]}` |
//! | worker -> VM | `{:ready, os_pid}`, once, when Python is up |
//! | worker -> VM | `{:reply, id, :ok \| :pong \| {:ok, term} \| {:error, reason}}` |
//! | worker -> VM | `{:callback, callback_id, name, args}` |
//! | worker -> VM | `{:send, pid, term}` |
//!
//! A message from the worker whose terms hold handles it just made gets one
//! more element, their ids (`{:reply, id, answer, [handle_id]}`, ...; see
//! [`list_handles`]).
//!
//! Descriptor 1 itself is pointed at standard error at start, so output that
//! bypasses `sys.stdout` (C code calling `printf`) can never corrupt a frame.
//!
//! Transport: when the VM passes `channel=PATH`, frames travel through the
//! shared-memory rings of `shm_ring` instead (no pipe copies, no wake-up
//! of the VM's I/O poller per frame); descriptor 0 then only tells this
//! process that the VM closed the port (end of file closes the rings).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::{Mutex, OnceLock};

use pyo3::prelude::*;

use crate::etf::{Reader, Writer};
use crate::shm_ring;

static OUTPUT: OnceLock<Mutex<File>> = OnceLock::new();

/// The shared-memory transport, when the VM set one up.
struct Shared {
    mapping: shm_ring::Mapping,
    reader: Mutex<shm_ring::Reader>,
    writer: Mutex<shm_ring::Writer>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// Keeps a private copy of descriptor 1 for frames, and points descriptor 1
/// at standard error; maps the VM's channel when it gave one.
pub(crate) fn open(channel: Option<&str>) -> Result<(), String> {
    open_pipes()?;
    if let Some(path) = channel {
        let mapping = shm_ring::Mapping::open(path)
            .map_err(|e| format!("mapping the VM's channel {path}: {e}"))?;
        let shared = SHARED.get_or_init(|| Shared {
            reader: Mutex::new(mapping.reader(shm_ring::TO_WORKER)),
            writer: Mutex::new(mapping.writer(shm_ring::TO_VM)),
            mapping,
        });
        // The port stays this process's lifeline: when the VM closes it
        // (or dies), descriptor 0 ends, and the rings close with it.
        std::thread::Builder::new()
            .name("port-watch".into())
            .spawn(move || {
                let mut sink = [0u8; 4096];
                let mut input = std::io::stdin();
                while matches!(input.read(&mut sink), Ok(n) if n > 0) {}
                shared.mapping.close();
            })
            .map_err(|e| format!("starting the port watcher: {e}"))?;
    }
    Ok(())
}

fn open_pipes() -> Result<(), String> {
    // SAFETY: dup and dup2 on descriptors this process owns; the new
    // descriptor is owned by the File from here on, and nothing else uses
    // descriptor 1 as the frame output.
    unsafe {
        let frames = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if frames < 0 {
            return Err(format!(
                "dup of the port's output failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::dup2(2, 1) < 0 {
            return Err(format!(
                "dup2 of stderr failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let _ = OUTPUT.set(Mutex::new(File::from_raw_fd(frames)));
        widen_pipe(0);
        widen_pipe(frames);
    }
    Ok(())
}

/// Pipes hold 64 KiB by default: a 100 MB argument would cross in 1,600
/// wake-ups of the VM's I/O poller and of this process. Ask for the most
/// the kernel grants (`/proc/sys/fs/pipe-max-size`, 1 MiB by default),
/// trying larger sizes first; a descriptor that is not a pipe keeps its size.
fn widen_pipe(fd: libc::c_int) {
    for size in [16 << 20, 4 << 20, 1 << 20] {
        // SAFETY: F_SETPIPE_SZ on a descriptor this process owns; failure
        // (not a pipe, over the limit) changes nothing.
        if unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) } >= 0 {
            return;
        }
    }
}

/// A frame read from the VM. Its buffer goes back to [`SPARE`] when it is
/// dropped, so the next frame reuses memory already mapped: the pages of a
/// fresh 100 MB buffer cost more to fault in than to fill.
pub(crate) struct Frame(Vec<u8>);

impl std::ops::Deref for Frame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.0);
        if buffer.capacity() <= MAX_SPARE {
            let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
            if spare.capacity() < buffer.capacity() {
                *spare = buffer;
            }
        }
    }
}

/// One buffer kept between frames (the largest seen, up to [`MAX_SPARE`]).
static SPARE: Mutex<Vec<u8>> = Mutex::new(Vec::new());
const MAX_SPARE: usize = 256 << 20;

/// The largest frame the VM may send; as `{:packet, 4}` allows.
const MAX_FRAME: usize = u32::MAX as usize;

fn spare(len: usize) -> Option<Vec<u8>> {
    let mut frame = std::mem::take(&mut *SPARE.lock().unwrap_or_else(|e| e.into_inner()));
    frame.clear();
    frame.try_reserve_exact(len).ok()?;
    frame.resize(len, 0);
    Some(frame)
}

fn ring_error(error: shm_ring::Error) -> std::io::Error {
    std::io::Error::other(format!("shared-memory channel: {error:?}"))
}

/// The next frame, or None when the VM closed the port.
pub(crate) fn read() -> std::io::Result<Option<Frame>> {
    if let Some(shared) = SHARED.get() {
        let mut reader = shared.reader.lock().unwrap_or_else(|e| e.into_inner());
        return match reader.recv(&shared.mapping, MAX_FRAME, spare) {
            Ok(frame) => Ok(Some(Frame(frame))),
            Err(shm_ring::Error::Closed) => Ok(None),
            Err(error) => Err(ring_error(error)),
        };
    }
    let mut input = std::io::stdin().lock();
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let len = u32::from_be_bytes(len) as usize;
    let mut frame = std::mem::take(&mut *SPARE.lock().unwrap_or_else(|e| e.into_inner()));
    frame.clear();
    frame
        .try_reserve_exact(len)
        .map_err(|_| std::io::Error::other(format!("no memory for a frame of {len} bytes")))?;
    frame.resize(len, 0);
    input.read_exact(&mut frame)?;
    Ok(Some(Frame(frame)))
}

/// Sends a frame built from [`Writer::message`]. Any thread may send
/// (`erlang.send` from a Python thread); frames never interleave.
pub(crate) fn write(mut message: Writer) -> std::io::Result<()> {
    let len = u32::try_from(message.buf.len() - 4)
        .map_err(|_| std::io::Error::other("a message larger than 4 GiB"))?;
    if let Some(shared) = SHARED.get() {
        let mut writer = shared.writer.lock().unwrap_or_else(|e| e.into_inner());
        return writer
            .send(&shared.mapping, &[&message.buf[4..]])
            .map_err(ring_error);
    }
    message.buf[..4].copy_from_slice(&len.to_be_bytes());
    let output = OUTPUT
        .get()
        .ok_or_else(|| std::io::Error::other("protocol not open"))?;
    let mut output = output.lock().unwrap_or_else(|e| e.into_inner());
    output.write_all(&message.buf)
}

/// A message from the VM.
pub(crate) enum Incoming<'a> {
    /// The reader is at the request.
    Call {
        id: u64,
        caller: &'a [u8],
        request: Reader<'a>,
    },
    /// The reader is at `{:ok, term}` or `{:error, text}`.
    CallbackReply {
        id: u64,
        answer: Reader<'a>,
    },
    Release(Vec<u64>),
}

pub(crate) fn parse(frame: &[u8]) -> PyResult<Incoming<'_>> {
    let mut reader = Reader::new(frame)?;
    let arity = reader.tuple()?;
    match (reader.atom()?, arity) {
        ("call", 4) => {
            let id = reader.u64()?;
            let caller = reader.raw()?;
            Ok(Incoming::Call {
                id,
                caller,
                request: reader,
            })
        }
        ("callback_reply", 3) => {
            let id = reader.u64()?;
            Ok(Incoming::CallbackReply { id, answer: reader })
        }
        ("release", 2) => Ok(Incoming::Release(reader.u64_list()?)),
        (other, _) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "unknown message {other}/{arity}"
        ))),
    }
}

/// Appends `ids` to a finished message as its tuple's last element.
pub(crate) fn list_handles(message: &mut Writer, ids: &[u64]) {
    // Every message is a small tuple: length, version, SMALL_TUPLE, arity.
    debug_assert_eq!(message.buf[5], 104, "a message is a small tuple");
    message.buf[6] += 1;
    message.list(ids.len());
    for &id in ids {
        message.int(id as i64);
    }
    message.end_list(ids.len());
}

/// `{:ready, os_pid}`.
pub(crate) fn ready() -> Writer {
    let mut message = Writer::message();
    message.tuple(2);
    message.atom("ready");
    message.int(std::process::id() as i64);
    message
}

/// `{:reply, id, ` followed by the answer the caller writes.
pub(crate) fn reply(id: u64) -> Writer {
    let mut message = Writer::message();
    message.tuple(3);
    message.atom("reply");
    message.int(id as i64);
    message
}

/// `{:callback, id, name, ` followed by the argument list.
pub(crate) fn callback(id: u64, name: &str) -> Writer {
    let mut message = Writer::message();
    message.tuple(4);
    message.atom("callback");
    message.int(id as i64);
    message.binary(name.as_bytes());
    message
}

/// `{:send, pid, ` followed by the term.
pub(crate) fn send(pid: &[u8]) -> Writer {
    let mut message = Writer::message();
    message.tuple(3);
    message.atom("send");
    message.raw(pid);
    message
}
