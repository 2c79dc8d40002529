//! The `proxy_on_*` callbacks: route each host callback to the right context object.
//!
//! The callbacks every plugin needs (context create/delete, vm start, configure, done)
//! are exported here. The others are plain functions that `main!` exports from the
//! plugin crate, only those its `hooks` list names: the host skips a phase whose
//! callback a module does not export, which is much cheaper than calling a default
//! that does nothing (see `main!`).
//!
//! A context is taken out of its table for the duration of its callback, so plugin code
//! may call back into the SDK (http_call registration, creating contexts) without a
//! `RefCell` being borrowed twice.

use crate::hostcalls;
use crate::traits::{HttpContext, RootContext};
use crate::types::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

type RootFactory = Box<dyn Fn(u32) -> Box<dyn RootContext>>;

/// The hash of a context id or call token: ids come from the host, not from a client,
/// so SipHash's flooding resistance buys nothing, and a context is looked up on every
/// callback (a multiply instead of SipHash; a hash table instead of a B-tree, which
/// also frees and allocates a node each time a context is taken out and put back).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// Contexts by id, the one put back last in a slot of its own: a VM mostly serves one
/// request at a time, and then every callback takes its context out and puts it back
/// without hashing (the others wait in the map).
struct Table<V> {
    slot: Option<(u32, V)>,
    rest: IdMap<V>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table { slot: None, rest: IdMap::default() }
    }
}

impl<V> Table<V> {
    fn take(&mut self, id: u32) -> Option<V> {
        match self.slot {
            Some((k, _)) if k == id => self.slot.take().map(|(_, v)| v),
            _ if self.rest.is_empty() => None,
            _ => self.rest.remove(&id),
        }
    }

    fn put(&mut self, id: u32, v: V) {
        if self.slot.is_none() {
            self.slot = Some((id, v));
        } else {
            self.rest.insert(id, v);
        }
    }

    fn contains(&self, id: u32) -> bool {
        matches!(self.slot, Some((k, _)) if k == id) || self.rest.contains_key(&id)
    }
}

#[derive(Default)]
struct Dispatcher {
    new_root: Option<RootFactory>,
    roots: Table<Box<dyn RootContext>>,
    https: Table<Box<dyn HttpContext>>,
    // http_call token -> context that made the call
    callouts: IdMap<u32>,
    // the context whose callback is running (owner of new http_call tokens)
    active: u32,
}

thread_local! {
    static DISPATCHER: RefCell<Dispatcher> = RefCell::new(Dispatcher::default());
}

/// Registers the factory for root contexts; call it once from `main!`.
pub fn set_root_context<F>(factory: F)
where
    F: Fn(u32) -> Box<dyn RootContext> + 'static,
{
    DISPATCHER.with(|d| d.borrow_mut().new_root = Some(Box::new(factory)));
}

pub(crate) fn register_callout(token: u32) {
    DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        let active = d.active;
        d.callouts.insert(token, active);
    });
}

fn take_root(id: u32) -> Option<Box<dyn RootContext>> {
    DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        d.active = id;
        d.roots.take(id)
    })
}

fn put_root(id: u32, ctx: Box<dyn RootContext>) {
    DISPATCHER.with(|d| {
        d.borrow_mut().roots.put(id, ctx);
    });
}

fn take_http(id: u32) -> Option<Box<dyn HttpContext>> {
    DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        d.active = id;
        d.https.take(id)
    })
}

fn put_http(id: u32, ctx: Box<dyn HttpContext>) {
    DISPATCHER.with(|d| {
        d.borrow_mut().https.put(id, ctx);
    });
}

fn with_root<R>(id: u32, default: R, f: impl FnOnce(&mut dyn RootContext) -> R) -> R {
    match take_root(id) {
        Some(mut ctx) => {
            let r = f(ctx.as_mut());
            put_root(id, ctx);
            r
        }
        None => default,
    }
}

fn with_http<R>(id: u32, default: R, f: impl FnOnce(&mut dyn HttpContext) -> R) -> R {
    match take_http(id) {
        Some(mut ctx) => {
            let r = f(ctx.as_mut());
            put_http(id, ctx);
            r
        }
        None => default,
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
    if root_context_id == 0 {
        let factory = DISPATCHER.with(|d| d.borrow_mut().new_root.take());
        match factory {
            Some(f) => {
                let root = f(context_id);
                DISPATCHER.with(|d| {
                    let mut d = d.borrow_mut();
                    d.new_root = Some(f);
                    d.roots.put(context_id, root);
                });
            }
            None => {
                let _ = hostcalls::log(LogLevel::Critical, "no root context registered: call set_root_context in main!");
            }
        }
        return;
    }
    let http = with_root(root_context_id, None, |root| root.create_http_context(context_id));
    if let Some(ctx) = http {
        put_http(context_id, ctx);
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(context_id: u32, size: usize) -> u32 {
    with_root(context_id, false, |r| r.on_vm_start(size)) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(context_id: u32, size: usize) -> u32 {
    with_root(context_id, false, |r| r.on_configure(size)) as u32
}

#[doc(hidden)]
pub fn proxy_on_tick(context_id: u32) {
    with_root(context_id, (), |r| r.on_tick())
}

#[doc(hidden)]
pub fn proxy_on_queue_ready(context_id: u32, queue_id: u32) {
    with_root(context_id, (), |r| r.on_queue_ready(queue_id))
}

#[doc(hidden)]
pub fn proxy_on_request_headers(context_id: u32, num_headers: usize, end_of_stream: u32) -> u32 {
    with_http(context_id, Action::Continue, |h| h.on_http_request_headers(num_headers, end_of_stream != 0)) as u32
}

#[doc(hidden)]
pub fn proxy_on_request_body(context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    with_http(context_id, Action::Continue, |h| h.on_http_request_body(body_size, end_of_stream != 0)) as u32
}

#[doc(hidden)]
pub fn proxy_on_request_trailers(context_id: u32, num_trailers: usize) -> u32 {
    with_http(context_id, Action::Continue, |h| h.on_http_request_trailers(num_trailers)) as u32
}

#[doc(hidden)]
pub fn proxy_on_response_headers(context_id: u32, num_headers: usize, end_of_stream: u32) -> u32 {
    with_http(context_id, Action::Continue, |h| h.on_http_response_headers(num_headers, end_of_stream != 0)) as u32
}

#[doc(hidden)]
pub fn proxy_on_response_body(context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    with_http(context_id, Action::Continue, |h| h.on_http_response_body(body_size, end_of_stream != 0)) as u32
}

#[doc(hidden)]
pub fn proxy_on_response_trailers(context_id: u32, num_trailers: usize) -> u32 {
    with_http(context_id, Action::Continue, |h| h.on_http_response_trailers(num_trailers)) as u32
}

#[doc(hidden)]
pub fn proxy_on_http_call_response(
    _context_id: u32,
    token_id: u32,
    num_headers: usize,
    body_size: usize,
    num_trailers: usize,
) {
    let owner = DISPATCHER.with(|d| d.borrow_mut().callouts.remove(&token_id));
    let owner = match owner {
        Some(id) => id,
        None => return,
    };
    // later hostcalls (resume, local response) must act on the caller's stream
    let _ = hostcalls::set_effective_context(owner);
    let is_http = DISPATCHER.with(|d| d.borrow().https.contains(owner));
    if is_http {
        with_http(owner, (), |h| h.on_http_call_response(token_id, num_headers, body_size, num_trailers));
    } else {
        with_root(owner, (), |r| r.on_http_call_response(token_id, num_headers, body_size, num_trailers));
    }
}

#[doc(hidden)]
pub fn proxy_on_done(context_id: u32) -> u32 {
    let is_http = DISPATCHER.with(|d| d.borrow().https.contains(context_id));
    if is_http {
        with_http(context_id, true, |h| h.on_done()) as u32
    } else {
        with_root(context_id, true, |r| r.on_done()) as u32
    }
}

#[doc(hidden)]
pub fn proxy_on_log(context_id: u32) {
    with_http(context_id, (), |h| h.on_log())
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    DISPATCHER.with(|d| {
        let mut d = d.borrow_mut();
        if d.https.take(context_id).is_none() {
            d.roots.take(context_id);
        }
        if !d.callouts.is_empty() {
            d.callouts.retain(|_, owner| *owner != context_id);
        }
    });
}

/// The ABI marker the host checks before anything else.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn table_keeps_every_context_whichever_place_it_is_in() {
        let mut t: Table<&str> = Table::default();
        assert_eq!(t.take(1), None);
        t.put(1, "a"); // the slot
        t.put(2, "b"); // the map: the slot is taken
        assert!(t.contains(1) && t.contains(2) && !t.contains(3));
        assert_eq!(t.take(2), Some("b"));
        assert_eq!(t.take(2), None);
        t.put(3, "c");
        assert_eq!(t.take(1), Some("a"));
        t.put(1, "a"); // back into the slot
        assert_eq!((t.take(3), t.take(1), t.take(1)), (Some("c"), Some("a"), None));
    }
}
