// The live alert stream, GET /api/v1/alerts/stream (Server-Sent Events).
//
// Read with fetch() rather than EventSource, because EventSource can do neither of the two
// things the console needs on a reconnect: send the token in the Authorization header (the
// API's docs ask clients that can to prefer it over ?access_token=, which lands in logs)
// and tell why a connection failed (a 401 means "log in again", a 503 "Kafka is away, try
// again"). Every (re)connect sends Last-Event-ID, the position after the last alert seen,
// so nothing sent while the console was away is missed and nothing is shown twice.

import { API, token } from "./api.js";

const MAX_BACKOFF_MS = 10000;
// stream-closed reasons after which the same token will not be let back in.
const FATAL_REASON = /revok|deactivat|inactive|expired|disabled|unauthori|logged.out|not.active/i;

export class AlertStream {
  constructor({ onAlert, onStatus, onUnauthorized }) {
    this.onAlert = onAlert;
    this.onStatus = onStatus;
    this.onUnauthorized = onUnauthorized;
    this.lastEventId = null;
    this.controller = null;
    this.stopped = true;
    this.wasConnected = false;
    this.backoff = 500;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  status(state, detail) {
    this.onStatus(state, detail);
  }

  async connect() {
    if (this.stopped) return;
    const controller = new AbortController();
    this.controller = controller;
    const headers = { Accept: "text/event-stream", Authorization: `Bearer ${token()}` };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    let reason = "the connection dropped";
    try {
      const r = await fetch(`${API}/alerts/stream`, {
        headers,
        signal: controller.signal,
        cache: "no-store",
      });
      if (r.status === 401) {
        this.stop();
        this.onUnauthorized("Logged out: the live alert stream no longer accepts this login.");
        return;
      }
      if (!r.ok) {
        reason = `the server answered HTTP ${r.status}`;
        if (r.status === 422) this.lastEventId = null; // a position the stream no longer knows
      } else {
        const closed = await this.read(r.body, controller);
        if (closed) {
          if (FATAL_REASON.test(closed)) {
            this.stop();
            this.onUnauthorized(`Logged out: ${closed}`);
            return;
          }
          reason = `the server closed the stream (${closed})`;
        }
      }
    } catch (e) {
      if (this.stopped || controller.signal.aborted) return;
      reason = `the connection failed (${e.message})`;
    }
    if (this.stopped) return;
    this.status("disconnected", `Disconnected: ${reason}. Reconnecting…`);
    const wait = this.backoff;
    this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
    setTimeout(() => this.connect(), wait);
  }

  // Parses the SSE wire format; answers the reason of a final stream-closed event, if any.
  async read(body, controller) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { id: null, type: null, data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return null;
      buffer += value;
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
        if (line === "") {
          const closed = this.dispatch(event);
          event = { id: null, type: null, data: [] };
          if (closed !== null) {
            controller.abort();
            return closed;
          }
        } else if (line.startsWith(":")) {
          // ": connected" means positioned: only now is the console live again.
          if (line.startsWith(": connected")) this.connected();
        } else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "id") event.id = val;
          else if (field === "event") event.type = val;
          else if (field === "data") event.data.push(val);
        }
      }
    }
  }

  connected() {
    const again = this.wasConnected;
    this.wasConnected = true;
    this.backoff = 500;
    this.status("live", again ? "Reconnected: resumed where the stream left off" : "Live");
  }

  dispatch(event) {
    if (!event.data.length) return null;
    let data;
    try {
      data = JSON.parse(event.data.join("\n"));
    } catch {
      return null;
    }
    if (event.type === "stream-closed") {
      return (data && data.reason) || "closed by the server";
    }
    if (event.id) this.lastEventId = event.id;
    this.onAlert(data, event.type);
    return null;
  }
}
