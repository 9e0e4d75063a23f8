//! Tiny plugin components written in WAT, for tests: each is compiled to a
//! real `.wasm` component and installed in a plugin folder with its manifest.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;

const PRELUDE: &str = include_str!("prelude.wat");
const CORE_ALLOC: &str = include_str!("core_alloc.wat");

/// A listener whose `on-change` runs `body` and then returns `ok`.
pub fn listener(body: &str) -> String {
    format!(
        r#"(component
{PRELUDE}
  (core module $m
{CORE_ALLOC}
    (func (export "on-change") (param i32 i32 i32 i32 i32 i32 i32 i64 i32 i32) (result i32)
      {body}
      (global.set $heap (i32.const 1024))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $f (param "event" $change-event) (result (result (error string)))
    (canon lift (core func $i "on-change") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (export "on-change" (func $f)))"#
    )
}

/// A listener like [`listener`] that may also call the host's `log`: `body`
/// can `(call $log level message_ptr message_len fields_ptr fields_len)`.
/// Memory and the allocator live in a module of their own, so that `log` can
/// be lowered with that memory before the module calling it is instantiated.
pub fn logging_listener(body: &str) -> String {
    format!(
        r#"(component
{PRELUDE}
  (import "nacre:plugin/host@0.1.0" (instance $host
    (type $level' (enum "trace" "debug" "info" "warn" "error"))
    (export "log-level" (type $level (eq $level')))
    (export "log" (func (param "level" $level) (param "message" string) (param "fields" (list (tuple string string)))))))
  (core module $libc
{CORE_ALLOC}
    (func (export "reset") (global.set $heap (i32.const 1024))))
  (core instance $libc (instantiate $libc))
  (core func $log (canon lower (func $host "log") (memory (core memory $libc "memory"))))
  (core module $m
    (import "libc" "memory" (memory 1))
    (import "libc" "reset" (func $reset))
    (import "host" "log" (func $log (param i32 i32 i32 i32 i32)))
    (func (export "on-change") (param i32 i32 i32 i32 i32 i32 i32 i64 i32 i32) (result i32)
      {body}
      (call $reset)
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.const 0)))
  (core instance $i (instantiate $m
    (with "libc" (instance $libc))
    (with "host" (instance (export "log" (func $log))))))
  (func $f (param "event" $change-event) (result (result (error string)))
    (canon lift (core func $i "on-change") (memory (core memory $libc "memory")) (realloc (core func $libc "cabi_realloc"))))
  (export "on-change" (func $f)))"#
    )
}

/// A health policy that runs `body` and answers `verdict`
/// (0 healthy, 1 unhealthy, 2 delete, 3 no opinion).
pub fn health_policy(body: &str, verdict: u32) -> String {
    format!(
        r#"(component
{PRELUDE}
  (core module $m
{CORE_ALLOC}
    (func (export "judge") (param i32) (result i32)
      {body}
      (global.set $heap (i32.const 1024))
      (i32.const {verdict})))
  (core instance $i (instantiate $m))
  (func $f (param "context" $beat-context) (result $health-verdict)
    (canon lift (core func $i "judge") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (export "judge" (func $f)))"#
    )
}

/// A push filter whose answer is computed by `body`, which must leave the
/// address of the result (case byte at +0, list pointer at +4, length at +8)
/// on the stack; `$args` points at (subscriber, service, instances), the
/// instance list's pointer at +64 and length at +68.
pub fn push_filter(body: &str) -> String {
    format!(
        r#"(component
{PRELUDE}
  (core module $m
{CORE_ALLOC}
    (func (export "filter") (param $args i32) (result i32)
      {body}))
  (core instance $i (instantiate $m))
  (func $f (param "subscriber" $subscriber) (param "service" $service-key) (param "instances" (list $instance))
    (result $filter-result)
    (canon lift (core func $i "filter") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (export "filter" (func $f)))"#
    )
}

/// Keeps only the first instance offered.
pub const KEEP_FIRST: &str = r#"
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.load offset=64 (local.get $args)))
      (i32.store (i32.const 24)
        (select (i32.const 1) (i32.load offset=68 (local.get $args))
                (i32.gt_u (i32.load offset=68 (local.get $args)) (i32.const 1))))
      (i32.const 16)"#;

/// Answers "do not push".
pub const SKIP: &str = r#"
      (i32.store8 (i32.const 16) (i32.const 1))
      (i32.const 16)"#;

/// Claims a list of 2^28 instances at address 0: far more than its memory holds.
pub const HUGE_ANSWER: &str = r#"
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 0))
      (i32.store (i32.const 24) (i32.const 0x10000000))
      (i32.const 16)"#;

/// Sends the instances offered, with the first one's port changed: an
/// instance it was not offered.
pub const NOT_OFFERED: &str = r#"
      (i32.store16 offset=8 (i32.load offset=64 (local.get $args))
        (i32.add (i32.load16_u offset=8 (i32.load offset=64 (local.get $args))) (i32.const 1)))
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.load offset=64 (local.get $args)))
      (i32.store (i32.const 24) (i32.load offset=68 (local.get $args)))
      (i32.const 16)"#;

/// Claims a list 100 times longer than the one offered, starting where it does.
pub const HUNDREDFOLD: &str = r#"
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.load offset=64 (local.get $args)))
      (i32.store (i32.const 24) (i32.mul (i32.load offset=68 (local.get $args)) (i32.const 100)))
      (i32.const 16)"#;

/// Sends the first instance offered three times (instances are 56 bytes).
pub const TRIPLICATE_FIRST: &str = r#"
      (memory.copy (i32.const 512) (i32.load offset=64 (local.get $args)) (i32.const 56))
      (memory.copy (i32.const 568) (i32.load offset=64 (local.get $args)) (i32.const 56))
      (memory.copy (i32.const 624) (i32.load offset=64 (local.get $args)) (i32.const 56))
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 512))
      (i32.store (i32.const 24) (i32.const 3))
      (i32.const 16)"#;

/// Grows memory to at least `pages` pages of 64 KiB (once: later calls find it grown).
pub fn ensure_pages(pages: u32) -> String {
    format!(
        "(if (i32.lt_u (memory.size) (i32.const {pages}))
           (then (drop (memory.grow (i32.sub (i32.const {pages}) (memory.size))))))"
    )
}

/// Code that writes, at `list`, `count` pairs of strings that are all the
/// string of `len` bytes at `string` (the body must declare `(local $i i32)`).
fn pairs_of_one_string(list: u32, count: u32, string: u32, len: u32) -> String {
    format!(
        r#"(block $done (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
        (i32.store (i32.add (i32.const {list}) (i32.mul (local.get $i) (i32.const 16))) (i32.const {string}))
        (i32.store offset=4 (i32.add (i32.const {list}) (i32.mul (local.get $i) (i32.const 16))) (i32.const {len}))
        (i32.store offset=8 (i32.add (i32.const {list}) (i32.mul (local.get $i) (i32.const 16))) (i32.const {string}))
        (i32.store offset=12 (i32.add (i32.const {list}) (i32.mul (local.get $i) (i32.const 16))) (i32.const {len}))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))"#
    )
}

/// Sends the first instance offered with metadata of `pairs` entries whose
/// keys and values are all the same 8 MiB string: a small answer that makes
/// a host which copies it first copy `pairs` × 16 MiB.
pub fn repeated_big_strings(pairs: u32) -> String {
    format!(
        r#"(local $i i32)
      {grow}
      (global.set $heap (i32.const 1024))
      (memory.copy (i32.const 512) (i32.load offset=64 (local.get $args)) (i32.const 56))
      (i32.store offset=36 (i32.const 512) (i32.const 65536))
      (i32.store offset=40 (i32.const 512) (i32.const {pairs}))
      {pairs_of_one_string}
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 512))
      (i32.store (i32.const 24) (i32.const 1))
      (i32.const 16)"#,
        grow = ensure_pages(145),
        pairs_of_one_string = pairs_of_one_string(65536, pairs, 1 << 20, 8 << 20)
    )
}

/// A [`listener`] body that answers `error(<len zero bytes>)`, the bytes at 64 KiB.
pub fn error_of(len: u32) -> String {
    format!(
        "{grow}
         (i32.store8 (i32.const 0) (i32.const 1))
         (i32.store (i32.const 4) (i32.const 65536))
         (i32.store (i32.const 8) (i32.const {len}))
         (global.set $heap (i32.const 1024))
         (return (i32.const 0))",
        grow = ensure_pages(len / 65536 + 2)
    )
}

/// A [`logging_listener`] body: one `info` line with `fields` fields whose keys
/// and values are all the same 1 MiB string.
pub fn log_fields_of_a_mebibyte(fields: u32) -> String {
    format!(
        r#"(local $i i32)
      {grow}
      {pairs_of_one_string}
      (call $log (i32.const 2) (i32.const 131072) (i32.const 16) (i32.const 65536) (i32.const {fields}))"#,
        grow = ensure_pages(19),
        pairs_of_one_string = pairs_of_one_string(65536, fields, 131072, 1 << 20)
    )
}

/// A [`logging_listener`] body: `lines` short `info` lines per call.
pub fn log_lines(lines: u32) -> String {
    format!(
        r#"(local $i i32)
      {grow}
      (block $done (loop $more
        (br_if $done (i32.ge_u (local.get $i) (i32.const {lines})))
        (call $log (i32.const 2) (i32.const 65536) (i32.const 8) (i32.const 0) (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))"#,
        grow = ensure_pages(2)
    )
}

pub const INFINITE_LOOP: &str = "(loop $spin (br $spin))";
pub const TRAP: &str = "unreachable";
/// Grows memory until the host refuses.
pub const MEMORY_BOMB: &str = "(loop $more (drop (memory.grow (i32.const 256))) (br $more))";

/// Compiles `wat` and installs it with a manifest as `<dir>/<name>.{wasm,toml}`.
/// The component is written first, so a watcher never sees a manifest without it.
pub fn install(dir: &Path, name: &str, world: &str, wat: &str, extra: &str) {
    let wasm = wat::parse_str(wat).unwrap_or_else(|e| panic!("{name}: bad WAT: {e}"));
    std::fs::write(dir.join(format!("{name}.wasm")), wasm).expect("component written");
    write_manifest(dir, name, world, extra);
}

pub fn write_manifest(dir: &Path, name: &str, world: &str, extra: &str) {
    let manifest =
        format!("name = \"{name}\"\nworld = \"{world}\"\nwasm = \"{name}.wasm\"\n{extra}\n");
    std::fs::write(dir.join(format!("{name}.toml")), manifest).expect("manifest written");
}
