;; A listener plugin in hand-written WAT (the component text format).
;;
;; It accepts every change event and does nothing with it: the smallest
;; component that satisfies the `listener` world of nacre:plugin@0.1.0. Use it
;; as a template for tiny test plugins; real plugins are easier to write in
;; Rust, C, Python or JavaScript (see docs/PLUGINS.md).
;;
;; Build:   wasm-tools parse listener.wat -o listener.wasm
;; Try:     nacre plugin test listener.toml --event event.json
;;
;; `on-change(event)` is lowered by the canonical ABI to ten core parameters
;; (the service key's three strings, the change flags, the revision and the
;; instance list); its `result<_, string>` is returned through memory: the
;; function returns the address of a byte 0 (ok).
(component
  ;; The nacre:plugin@0.1.0 types, exported so exported functions may use them.
  (type $service-key' (record (field "namespace" string) (field "group" string) (field "name" string)))
  (export $service-key "service-key" (type $service-key'))
  (type $instance' (record
    (field "ip" string) (field "port" u16) (field "cluster" string) (field "weight" f64)
    (field "healthy" bool) (field "enabled" bool) (field "ephemeral" bool) (field "marked" bool)
    (field "metadata" (list (tuple string string))) (field "last-beat-millis" s64)))
  (export $instance "instance" (type $instance'))
  (type $change-kinds' (flags "instances" "service" "removed"))
  (export $change-kinds "change-kinds" (type $change-kinds'))
  (type $change-event' (record (field "service" $service-key) (field "kinds" $change-kinds)
    (field "revision" u64) (field "instances" (list $instance))))
  (export $change-event "change-event" (type $change-event'))
  (type $beat-context' (record (field "service" $service-key) (field "instance" $instance)
    (field "on-beat" bool) (field "beat-metadata" (list (tuple string string)))
    (field "now-millis" s64) (field "beat-timeout-millis" u64) (field "delete-timeout-millis" u64)))
  (export $beat-context "beat-context" (type $beat-context'))
  (type $health-verdict' (enum "healthy" "unhealthy" "delete" "no-opinion"))
  (export $health-verdict "health-verdict" (type $health-verdict'))
  (type $subscriber' (record (field "address" string) (field "client-agent" string)
    (field "namespace" string) (field "clusters" (list string)) (field "app" string)))
  (export $subscriber "subscriber" (type $subscriber'))
  (type $filter-result' (variant (case "send" (list $instance)) (case "skip")))
  (export $filter-result "filter-result" (type $filter-result'))

  (core module $m
    ;; Memory and a bump allocator for the host to lower arguments into.
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    (func (export "cabi_realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
      (local $ret i32)
      (local.set $ret (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                               (i32.sub (i32.const 0) (local.get $align))))
      (global.set $heap (i32.add (local.get $ret) (local.get $size)))
      (block $fits
        (loop $grow
          (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
          (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
          (br $grow)))
      (local.get $ret))

    (func (export "on-change") (param i32 i32 i32 i32 i32 i32 i32 i64 i32 i32) (result i32)
      ;; Forget the arguments the host copied in, and answer ok.
      (global.set $heap (i32.const 1024))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $on-change (param "event" $change-event) (result (result (error string)))
    (canon lift (core func $i "on-change") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
  (export "on-change" (func $on-change)))
