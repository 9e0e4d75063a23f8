// A listener plugin in C: watches how many instances of each service are
// healthy, logs the count on every change, and warns when it falls below the
// plugin's `min_healthy` setting (default 1).
//
// The same plugin is in examples/python and examples/javascript; the host's
// tests check that all three say the same thing about the same events.
//
// Build (scripts/build-plugins.sh does exactly this):
//   wit-bindgen c ../../wit/nacre-plugin-0.1.0 --world listener --out-dir gen
//   clang --target=wasm32-wasi -mexec-model=reactor -O2 -Igen -o core.wasm \
//       listener.c gen/listener.c gen/listener_component_type.o
//   wasm-tools component new core.wasm -o c_listener.wasm
// Try:
//   nacre plugin test listener.toml --event event.json

#include <stdlib.h>
#include <string.h>

#include "listener.h"

// No stdio here: printf and friends would import WASI's file API, which a
// plugin has no use for (and which would need the preview1 adapter).

// A fixed-size text buffer that truncates rather than overflows.
typedef struct {
  char text[192];
  size_t len;
} text_t;

static void append(text_t *t, const char *bytes, size_t len) {
  size_t room = sizeof t->text - 1 - t->len;
  if (len > room) {
    len = room;
  }
  memcpy(t->text + t->len, bytes, len);
  t->len += len;
  t->text[t->len] = '\0';
}

static void append_str(text_t *t, const char *s) { append(t, s, strlen(s)); }

static void append_wit(text_t *t, const listener_string_t *s) {
  append(t, (const char *)s->ptr, s->len);
}

static void append_number(text_t *t, unsigned long n) {
  char digits[24];
  size_t i = sizeof digits;
  do {
    digits[--i] = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  append(t, digits + i, sizeof digits - i);
}

// Log levels of nacre:plugin/types (the enum's order in the WIT file).
enum { LOG_INFO = 2, LOG_WARN = 3 };

// The plugin's `min_healthy` setting from its manifest, or 1.
static long min_healthy(void) {
  listener_string_t key, value;
  listener_string_set(&key, "min_healthy");
  long min = 1;
  if (nacre_plugin_host_config_get(&key, &value)) {
    char text[32] = {0};
    size_t len = value.len < sizeof text - 1 ? value.len : sizeof text - 1;
    memcpy(text, value.ptr, len);
    char *end = NULL;
    long parsed = strtol(text, &end, 10);
    if (end != text && *end == '\0' && parsed >= 0) {
      min = parsed;
    }
    listener_string_free(&value);
  }
  return min;
}

// Sends one log line with the service and both counts as fields.
static void log_counts(uint8_t level, const text_t *message, const listener_string_t *service,
                       size_t healthy, size_t total) {
  text_t healthy_text = {0}, total_text = {0};
  append_number(&healthy_text, healthy);
  append_number(&total_text, total);

  listener_tuple2_string_string_t fields[3];
  listener_string_set(&fields[0].f0, "service");
  fields[0].f1 = *service;
  listener_string_set(&fields[1].f0, "healthy");
  listener_string_set(&fields[1].f1, healthy_text.text);
  listener_string_set(&fields[2].f0, "total");
  listener_string_set(&fields[2].f1, total_text.text);
  listener_list_tuple2_string_string_t list = {fields, 3};

  listener_string_t text;
  listener_string_set(&text, message->text);
  nacre_plugin_host_log(level, &text, &list);
}

bool exports_listener_on_change(listener_change_event_t *event, listener_string_t *err) {
  (void)err;  // this listener never fails
  const listener_string_t *name = &event->service.name;
  size_t healthy = 0, total = event->instances.len;
  for (size_t i = 0; i < total; i++) {
    const nacre_plugin_types_instance_t *instance = &event->instances.ptr[i];
    if (instance->healthy && instance->enabled) {
      healthy++;
    }
  }

  text_t message = {0};
  append_wit(&message, name);
  if (event->kinds & NACRE_PLUGIN_TYPES_CHANGE_KINDS_REMOVED) {
    append_str(&message, " was removed");
    log_counts(LOG_INFO, &message, name, 0, 0);
  } else {
    long min = min_healthy();
    append_str(&message, ": ");
    append_number(&message, healthy);
    append_str(&message, " of ");
    append_number(&message, total);
    append_str(&message, " instances healthy");
    log_counts(LOG_INFO, &message, name, healthy, total);
    if ((long)healthy < min) {
      text_t warning = {0};
      append_wit(&warning, name);
      append_str(&warning, " has fewer than ");
      append_number(&warning, (unsigned long)min);
      append_str(&warning, " healthy instances");
      log_counts(LOG_WARN, &warning, name, healthy, total);
    }
  }

  // The callee owns an export's arguments.
  listener_change_event_free(event);
  return true;
}
