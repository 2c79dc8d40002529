//! Safe wrappers over every host function the SDK uses. All `unsafe` lives here and in
//! `dispatcher`/`allocator`; plugin code calls these (or the trait helpers built on them).

use crate::ffi;
use crate::pairs;
use crate::types::*;
use std::ptr::null_mut;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Takes ownership of memory the host filled through our `malloc` export.
fn take(ptr: *mut u8, len: usize) -> Option<Bytes> {
    if ptr.is_null() || len == 0 {
        return None;
    }
    // SAFETY: the host got `ptr` from our allocator (`Vec::with_capacity(len)`) and wrote
    // exactly `len` bytes into it; ownership passes back to us here.
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// `Ok(None)` for NOT_FOUND, an empty value for OK with no bytes.
fn take_result(code: u32, ptr: *mut u8, len: usize) -> Result<Option<Bytes>> {
    match code {
        0 => Ok(Some(take(ptr, len).unwrap_or_default())),
        1 => Ok(None),
        other => Err(Error::from_status(other)),
    }
}

pub fn log(level: LogLevel, message: &str) -> Result<()> {
    check(unsafe { ffi::proxy_log(level as u32, message.as_ptr(), message.len()) })
}

pub fn get_log_level() -> Result<LogLevel> {
    let mut level = 0u32;
    check(unsafe { ffi::proxy_get_log_level(&mut level) })?;
    Ok(LogLevel::from_u32(level))
}

pub fn get_current_time() -> SystemTime {
    let mut nanos = 0u64;
    // a host without a clock leaves 0: the epoch is a safer "unknown" than a panic
    let _ = unsafe { ffi::proxy_get_current_time_nanoseconds(&mut nanos) };
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

pub fn set_tick_period(period: Duration) -> Result<()> {
    let ms = period.as_millis().min(u32::MAX as u128) as u32;
    check(unsafe { ffi::proxy_set_tick_period_milliseconds(ms) })
}

pub fn get_buffer(buffer: BufferType, start: usize, max_size: usize) -> Result<Option<Bytes>> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    let code = unsafe { ffi::proxy_get_buffer_bytes(buffer as u32, start, max_size, &mut ptr, &mut len) };
    take_result(code, ptr, len)
}

/// Replaces `size` bytes at `start` with `value` (`start = 0, size = 0` prepends; a start
/// at or past the end appends; `0, usize::MAX` replaces the whole buffer).
pub fn set_buffer(buffer: BufferType, start: usize, size: usize, value: &[u8]) -> Result<()> {
    check(unsafe {
        ffi::proxy_set_buffer_bytes(buffer as u32, start, size, value.as_ptr(), value.len())
    })
}

/// Length of a buffer and its flags (bit 0: end of stream), when the host supports it.
pub fn get_buffer_status(buffer: BufferType) -> Result<(usize, u32)> {
    let mut len = 0usize;
    let mut flags = 0u32;
    check(unsafe { ffi::proxy_get_buffer_status(buffer as u32, &mut len, &mut flags) })?;
    Ok((len, flags))
}

fn lossy(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

pub fn get_map_bytes(map: MapType) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    pairs::deserialize(&get_map_raw(map)?).ok_or(Error::SerializationFailure)
}

/// A whole header map in the wire format, as the host sent it: decode it with
/// `pairs::split` to read the pairs without copying each key and value.
pub fn get_map_raw(map: MapType) -> Result<Bytes> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    check(unsafe { ffi::proxy_get_header_map_pairs(map as u32, &mut ptr, &mut len) })?;
    Ok(take(ptr, len).unwrap_or_default())
}

/// Every pair of a header map, in order; non-UTF-8 bytes are replaced.
pub fn get_map(map: MapType) -> Result<Vec<(String, String)>> {
    Ok(get_map_bytes(map)?
        .into_iter()
        .map(|(k, v)| (lossy(k), lossy(v)))
        .collect())
}

pub fn get_map_size(map: MapType) -> Result<usize> {
    let mut size = 0usize;
    check(unsafe { ffi::proxy_get_header_map_size(map as u32, &mut size) })?;
    Ok(size)
}

pub fn set_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(map: MapType, pairs_: &[(K, V)]) -> Result<()> {
    let buf = pairs::serialize(pairs_);
    check(unsafe { ffi::proxy_set_header_map_pairs(map as u32, buf.as_ptr(), buf.len()) })
}

pub fn get_map_value_bytes(map: MapType, key: &str) -> Result<Option<Bytes>> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    let code = unsafe {
        ffi::proxy_get_header_map_value(map as u32, key.as_ptr(), key.len(), &mut ptr, &mut len)
    };
    take_result(code, ptr, len)
}

pub fn get_map_value(map: MapType, key: &str) -> Result<Option<String>> {
    Ok(get_map_value_bytes(map, key)?.map(lossy))
}

/// Sets (replacing every existing value) or, with `None`, removes a header.
pub fn set_map_value(map: MapType, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => check(unsafe {
            ffi::proxy_replace_header_map_value(map as u32, key.as_ptr(), key.len(), v.as_ptr(), v.len())
        }),
        None => check(unsafe { ffi::proxy_remove_header_map_value(map as u32, key.as_ptr(), key.len()) }),
    }
}

pub fn add_map_value(map: MapType, key: &str, value: &str) -> Result<()> {
    check(unsafe {
        ffi::proxy_add_header_map_value(map as u32, key.as_ptr(), key.len(), value.as_ptr(), value.len())
    })
}

/// Property paths are segments joined by NUL, without a trailing NUL (as Envoy expects).
fn property_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(seg.as_bytes());
    }
    out
}

pub fn get_property(path: &[&str]) -> Result<Option<Bytes>> {
    let p = property_path(path);
    let mut ptr = null_mut();
    let mut len = 0usize;
    let code = unsafe { ffi::proxy_get_property(p.as_ptr(), p.len(), &mut ptr, &mut len) };
    take_result(code, ptr, len)
}

pub fn set_property(path: &[&str], value: Option<&[u8]>) -> Result<()> {
    let p = property_path(path);
    let v = value.unwrap_or(&[]);
    check(unsafe { ffi::proxy_set_property(p.as_ptr(), p.len(), v.as_ptr(), v.len()) })
}

/// The value and its CAS token (`None`, `None` when the key is absent).
pub fn get_shared_data(key: &str) -> Result<(Option<Bytes>, Option<u32>)> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    let mut cas = 0u32;
    let code =
        unsafe { ffi::proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut len, &mut cas) };
    match code {
        0 => Ok((Some(take(ptr, len).unwrap_or_default()), if cas == 0 { None } else { Some(cas) })),
        1 => Ok((None, None)),
        other => Err(Error::from_status(other)),
    }
}

/// Stores `value`; with `cas = Some(token)` fails with `Error::CasMismatch` when someone
/// else wrote the key since `get_shared_data` returned `token`.
pub fn set_shared_data(key: &str, value: Option<&[u8]>, cas: Option<u32>) -> Result<()> {
    let v = value.unwrap_or(&[]);
    check(unsafe {
        ffi::proxy_set_shared_data(key.as_ptr(), key.len(), v.as_ptr(), v.len(), cas.unwrap_or(0))
    })
}

pub fn register_shared_queue(name: &str) -> Result<u32> {
    let mut id = 0u32;
    check(unsafe { ffi::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn resolve_shared_queue(vm_id: &str, name: &str) -> Result<Option<u32>> {
    let mut id = 0u32;
    let code = unsafe {
        ffi::proxy_resolve_shared_queue(vm_id.as_ptr(), vm_id.len(), name.as_ptr(), name.len(), &mut id)
    };
    match code {
        0 => Ok(Some(id)),
        1 => Ok(None),
        other => Err(Error::from_status(other)),
    }
}

pub fn enqueue_shared_queue(id: u32, value: &[u8]) -> Result<()> {
    check(unsafe { ffi::proxy_enqueue_shared_queue(id, value.as_ptr(), value.len()) })
}

/// `Ok(None)` when the queue is empty.
pub fn dequeue_shared_queue(id: u32) -> Result<Option<Bytes>> {
    let mut ptr = null_mut();
    let mut len = 0usize;
    match unsafe { ffi::proxy_dequeue_shared_queue(id, &mut ptr, &mut len) } {
        0 => Ok(Some(take(ptr, len).unwrap_or_default())),
        7 => Ok(None),
        other => Err(Error::from_status(other)),
    }
}

pub fn continue_stream(stream: StreamType) -> Result<()> {
    check(unsafe { ffi::proxy_continue_stream(stream as u32) })
}

pub fn close_stream(stream: StreamType) -> Result<()> {
    check(unsafe { ffi::proxy_close_stream(stream as u32) })
}

/// Ends the request with a response generated here; the upstream is not (or no longer)
/// involved.
pub fn send_http_response(status: u32, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<()> {
    let hdrs = pairs::serialize(headers);
    let b = body.unwrap_or(&[]);
    let details = "";
    check(unsafe {
        ffi::proxy_send_local_response(
            status,
            details.as_ptr(),
            0,
            b.as_ptr(),
            b.len(),
            hdrs.as_ptr(),
            hdrs.len(),
            -1,
        )
    })
}

/// Calls `upstream` (an upstream id of the bundle). `headers` must carry `:method`,
/// `:path` and `:authority`. Returns the token `on_http_call_response` will see.
pub fn dispatch_http_call(
    upstream: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    trailers: &[(&str, &str)],
    timeout: Duration,
) -> Result<u32> {
    let hdrs = pairs::serialize(headers);
    let trls = pairs::serialize(trailers);
    let b = body.unwrap_or(&[]);
    let ms = timeout.as_millis().min(u32::MAX as u128) as u32;
    let mut token = 0u32;
    check(unsafe {
        ffi::proxy_http_call(
            upstream.as_ptr(),
            upstream.len(),
            hdrs.as_ptr(),
            hdrs.len(),
            b.as_ptr(),
            b.len(),
            trls.as_ptr(),
            trls.len(),
            ms,
            &mut token,
        )
    })?;
    crate::dispatcher::register_callout(token);
    Ok(token)
}

pub fn set_effective_context(context_id: u32) -> Result<()> {
    check(unsafe { ffi::proxy_set_effective_context(context_id) })
}

/// Tells the host a context whose `on_done` returned false has now finished.
pub fn done() -> Result<()> {
    check(unsafe { ffi::proxy_done() })
}

pub fn define_metric(kind: MetricType, name: &str) -> Result<u32> {
    let mut id = 0u32;
    check(unsafe { ffi::proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, offset: i64) -> Result<()> {
    check(unsafe { ffi::proxy_increment_metric(id, offset) })
}

pub fn record_metric(id: u32, value: u64) -> Result<()> {
    check(unsafe { ffi::proxy_record_metric(id, value) })
}

pub fn get_metric(id: u32) -> Result<u64> {
    let mut value = 0u64;
    check(unsafe { ffi::proxy_get_metric(id, &mut value) })?;
    Ok(value)
}
