package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/jsruntime"
	"github.com/smithers-orchestrator/smithers-go/stream"
)

// wsTestModule registers the workflows the WebSocket tests drive: those of
// testModule the tests share, and some that produce many events.
const wsTestModule = `
export default function register(gateway) {
  gateway.register("echo", async (ctx) => {
    const obj = await ctx.task("obj", () => ({ n: ctx.input.n ?? 0 }));
    const scalar = await ctx.task("scalar", () => 42);
    return { obj, scalar };
  });
  gateway.register("gate", async (ctx) => {
    const d = await ctx.approval("ship", { request: { title: "Ship it?", summary: "please" }, onDeny: "continue" });
    return { approved: d.approved };
  });
  gateway.register("taskgate", async (ctx) => {
    await ctx.task("prep", () => 1);
    const d = await ctx.approval("ship", { request: { title: "Ship it?" }, onDeny: "continue" });
    return { approved: d.approved };
  });
  gateway.register("wait", async (ctx) => {
    await ctx.task("before", () => 1);
    const got = await ctx.waitForEvent("evt", { event: "go" });
    await ctx.task("after", () => 2);
    return got;
  });
  gateway.register("sleepy", async (ctx) => {
    await ctx.sleep("nap", 3600000);
  });
  // many runs input.first tasks, waits for the signal "more" when
  // input.hold is set, then runs input.second tasks; each task sleeps
  // input.delayMs (not durable, only to spread the events out).
  gateway.register("many", async (ctx) => {
    const delay = ctx.input.delayMs ?? 0;
    const body = (i) => async () => { if (delay > 0) await new Promise((r) => setTimeout(r, delay)); return i; };
    for (let i = 0; i < (ctx.input.first ?? 0); i++) await ctx.task("a" + i, body(i), { retries: 0 });
    if (ctx.input.hold) await ctx.waitForEvent("hold", { event: "more" });
    for (let i = 0; i < (ctx.input.second ?? 0); i++) await ctx.task("b" + i, body(i), { retries: 0 });
    return { done: true };
  });
  // chatty waits for the signal "flood" when input.hold is set, then
  // emits input.chunks task.output events of input.size bytes each
  // (alternating stdout and stderr, so the gateway's output coalescing
  // keeps them apart).
  gateway.register("chatty", async (ctx) => {
    if (ctx.input.hold) await ctx.waitForEvent("hold", { event: "flood" });
    await ctx.task("talk", (t) => {
      const chunk = "x".repeat(ctx.input.size ?? 100);
      for (let i = 0; i < (ctx.input.chunks ?? 0); i++) t.emit(chunk + " " + i, i % 2 ? "stderr" : "stdout");
      return ctx.input.chunks;
    }, { retries: 0 });
  });
}
`

// wsOptions configure newWSGateway. Zero values are the defaults.
type wsOptions struct {
	cfg         Config // the WebSocket settings; Gateway, Reads, Auth, Logger, Hub and Metrics are filled in
	eventWindow int
	// auth, when set, replaces the token store as the authenticator.
	auth auth.Authenticator
	// dir reuses a data directory (database, module, token store) of an
	// earlier gateway; "" makes a fresh one.
	dir string
	// tokens are the tokens of the reused token store.
	tokens map[string]string
	// listener, when set, wraps the test server's listener.
	listener func(net.Listener) net.Listener
}

// wsGateway is the real engine, the real hub (wired as the store's commit
// hook, as cmd does), real metrics and a real token store file, served by
// an httptest server so that WebSocket clients can dial it.
type wsGateway struct {
	*testGateway
	dir       string
	tokenPath string
	hub       *stream.Hub
	metrics   *Metrics
	ts        *httptest.Server
	url       string // http://127.0.0.1:port
	stopOnce  sync.Once
	stops     []func()
}

func newWSGateway(t *testing.T, o wsOptions) *wsGateway {
	t.Helper()
	ctx := context.Background()
	log := testLogger()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "gateway.mjs"), []byte(wsTestModule), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := &wsGateway{dir: dir, tokenPath: filepath.Join(dir, "tokens.json"), hub: stream.NewHub()}
	t.Cleanup(g.stop)
	// stops run in reverse order of registration.
	exec, err := jsruntime.Load(jsruntime.Options{ModulePath: filepath.Join(dir, "gateway.mjs"), Logger: log})
	if err != nil {
		t.Fatalf("load module: %v", err)
	}
	g.stops = append(g.stops, func() { exec.Close() })
	store, err := sqlite.Open(ctx, filepath.Join(dir, "smithers.db"), sqlite.Options{Logger: log, EventWindow: o.eventWindow, OnCommit: g.hub.Publish})
	if err != nil {
		t.Fatal(err)
	}
	g.stops = append(g.stops, func() { store.Close() })
	workflows := []string{}
	for _, wf := range exec.Workflows() {
		workflows = append(workflows, wf.Key)
	}
	g.metrics = NewMetrics(prometheus.NewRegistry(), workflows)
	gw, err := host.New(host.Config{Store: store, Executor: exec, Logger: log, InstanceID: "test", Observer: g.metrics})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	g.stops = append(g.stops, func() { gw.Close() })

	tokens := o.tokens
	if tokens == nil {
		tokens = map[string]string{}
		issue := func(name string, io auth.IssueOptions) {
			io.TTL = time.Hour
			res, err := auth.Issue(g.tokenPath, io)
			if err != nil {
				t.Fatal(err)
			}
			tokens[name] = res.Token
		}
		issue(tokAll, auth.IssueOptions{Scopes: []string{"*"}, UserID: "alice"})
		issue(tokRead, auth.IssueOptions{Scopes: []string{"run:read"}})
		issue(tokCronRead, auth.IssueOptions{Scopes: []string{"cron:read"}})
		issue(tokBob, auth.IssueOptions{Scopes: []string{"*"}, UserID: "bob"})
	}
	tokenStore := auth.OpenTokenStore(g.tokenPath, auth.TokenStoreOptions{Logger: log})
	g.stops = append(g.stops, func() { tokenStore.Close() })

	cfg := o.cfg
	cfg.Gateway, cfg.Reads, cfg.Auth, cfg.Logger, cfg.Hub, cfg.Metrics = gw, store, tokenStore, log, g.hub, g.metrics
	if o.auth != nil {
		cfg.Auth = o.auth
	}
	srv := NewServer(cfg)
	g.testGateway = &testGateway{t: t, gw: gw, srv: srv, h: srv.Handler(), tokens: tokens}
	g.ts = httptest.NewUnstartedServer(srv.Handler())
	if o.listener != nil {
		g.ts.Listener = o.listener(g.ts.Listener)
	}
	g.ts.Start()
	g.url = g.ts.URL
	// Sockets first (the httptest server forgets hijacked connections),
	// then the listener, then the engine.
	g.stops = append(g.stops, func() { g.ts.Close() }, srv.Close)
	return g
}

// stop shuts the gateway down, in the order cmd does; it is idempotent.
func (g *wsGateway) stop() {
	g.stopOnce.Do(func() {
		for i := len(g.stops) - 1; i >= 0; i-- {
			g.stops[i]()
		}
	})
}

// restart stops g and opens a new gateway on the same data directory.
func (g *wsGateway) restart(t *testing.T, o wsOptions) *wsGateway {
	t.Helper()
	g.stop()
	o.dir, o.tokens = g.dir, g.tokens
	return newWSGateway(t, o)
}

// healthStateVersion is /health's stateVersion.
func (g *wsGateway) healthStateVersion(t *testing.T) int64 {
	t.Helper()
	res := g.serve(httptest.NewRequest(http.MethodGet, "/health", nil))
	sv, ok := res.body["stateVersion"].(float64)
	if res.status != http.StatusOK || !ok {
		t.Fatalf("/health: %d %s", res.status, res.raw)
	}
	return int64(sv)
}

// launchWith launches a run with a caller-chosen runId over HTTP.
func (g *wsGateway) launchWith(runID, workflow string, input any) {
	g.t.Helper()
	p := g.ok("launchRun", map[string]any{"workflow": workflow, "input": input, "options": map[string]any{"runId": runID}}).(map[string]any)
	if p["runId"] != runID {
		g.t.Fatalf("launched %v, want runId %s", p, runID)
	}
}

// openConns is a snapshot of the server's open sockets.
func (g *wsGateway) openConns() []*wsConn {
	g.srv.connsMu.Lock()
	defer g.srv.connsMu.Unlock()
	out := make([]*wsConn, 0, len(g.srv.conns))
	for c := range g.srv.conns {
		out = append(out, c)
	}
	return out
}

// wsFrame is one frame a client received.
type wsFrame struct {
	raw []byte
	m   map[string]any
}

func (f wsFrame) typ() string   { s, _ := f.m["type"].(string); return s }
func (f wsFrame) event() string { s, _ := f.m["event"].(string); return s }
func (f wsFrame) id() string    { s, _ := f.m["id"].(string); return s }
func (f wsFrame) isEvent(name string) bool {
	return f.typ() == "event" && f.event() == name
}

// payload is the frame's payload object (nil when it is not an object).
func (f wsFrame) payload() map[string]any { p, _ := f.m["payload"].(map[string]any); return p }

// errorObject is the error object of a response frame.
func (f wsFrame) errorObject() map[string]any { e, _ := f.m["error"].(map[string]any); return e }

// num returns the number at key of m, failing the test when it is absent.
func num(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	v, ok := m[key].(float64)
	if !ok {
		t.Fatalf("%s is not a number in %v", key, m)
	}
	if v != float64(int64(v)) {
		t.Fatalf("%s = %v is not an integer", key, v)
	}
	return int64(v)
}

// wsClient is a raw WebSocket client of the tests: a reader goroutine
// records every frame in arrival order, so that tests can assert on the
// order of responses and events.
type wsClient struct {
	t    *testing.T
	ws   *websocket.Conn
	resp *http.Response
	wmu  sync.Mutex

	mu       sync.Mutex
	frames   []wsFrame
	changed  chan struct{} // closed and replaced on every new frame and at the end
	ended    bool
	closeErr error // why the reader ended
	nextID   int
}

// waitTimeout bounds every wait of the WebSocket tests.
const waitTimeout = 15 * time.Second

// wsURL turns the gateway's http URL plus path into a ws:// URL.
func (g *wsGateway) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(g.url, "http") + path
}

// dial opens a socket on path ("/" when empty) without connecting.
func (g *wsGateway) dial(t *testing.T, path string) *wsClient {
	t.Helper()
	if path == "" {
		path = "/"
	}
	ws, resp, err := websocket.DefaultDialer.Dial(g.wsURL(path), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c := &wsClient{t: t, ws: ws, resp: resp, changed: make(chan struct{})}
	t.Cleanup(func() { ws.Close() })
	go c.read()
	return c
}

// connected dials and connects with the named token and extra connect
// params; it fails the test when connect fails.
func (g *wsGateway) connected(t *testing.T, token string, extra map[string]any) *wsClient {
	t.Helper()
	c := g.dial(t, "")
	res := c.call("connect", g.connectParams(token, extra))
	if res.m["ok"] != true {
		t.Fatalf("connect: %s", res.raw)
	}
	return c
}

// connectParams are valid connect params with the named token, with extra
// merged in (a nil value deletes the key).
func (g *wsGateway) connectParams(token string, extra map[string]any) map[string]any {
	p := map[string]any{"minProtocol": 1, "maxProtocol": 1, "client": map[string]any{"id": "test", "version": "1", "platform": "go"}}
	if token != "" {
		p["auth"] = map[string]any{"token": g.token(token)}
	}
	for k, v := range extra {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return p
}

func (c *wsClient) read() {
	for {
		_, data, err := c.ws.ReadMessage()
		c.mu.Lock()
		if err != nil {
			c.ended, c.closeErr = true, err
		} else {
			f := wsFrame{raw: data}
			if jerr := json.Unmarshal(data, &f.m); jerr != nil {
				f.m = map[string]any{"undecodable": string(data)}
			}
			c.frames = append(c.frames, f)
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// send writes a raw text message.
func (c *wsClient) send(data string) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(data)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// request sends a request frame and returns its id.
func (c *wsClient) request(method string, params any) string {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := "r" + strconv.Itoa(c.nextID)
	c.mu.Unlock()
	frame := map[string]any{"type": "req", "id": id, "method": method}
	if params != nil {
		frame["params"] = params
	}
	b, err := json.Marshal(frame)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(string(b))
	return id
}

// call sends a request and waits for its response frame.
func (c *wsClient) call(method string, params any) wsFrame {
	c.t.Helper()
	id := c.request(method, params)
	_, f := c.waitFor(method+" response "+id, 0, func(f wsFrame) bool { return f.typ() == "res" && f.id() == id })
	return f
}

// ok calls a method that must succeed and returns its payload.
func (c *wsClient) ok(method string, params any) map[string]any {
	c.t.Helper()
	f := c.call(method, params)
	if f.m["ok"] != true {
		c.t.Fatalf("%s %v: %s", method, params, f.raw)
	}
	p, _ := f.m["payload"].(map[string]any)
	return p
}

// waitFor waits for the first frame at index from or later that matches
// and returns its index.
func (c *wsClient) waitFor(what string, from int, match func(wsFrame) bool) (int, wsFrame) {
	c.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i := from; i < len(c.frames); i++ {
			if match(c.frames[i]) {
				f := c.frames[i]
				c.mu.Unlock()
				return i, f
			}
		}
		from = max(from, len(c.frames))
		ended, err, changed := c.ended, c.closeErr, c.changed
		c.mu.Unlock()
		if ended {
			c.t.Fatalf("waiting for %s: connection ended: %v", what, err)
		}
		select {
		case <-changed:
		case <-deadline.C:
			c.t.Fatalf("timed out waiting for %s; received %s", what, c.describe())
		}
	}
}

// waitEvent waits for an event frame named name whose payload matches
// (nil: any) from index from.
func (c *wsClient) waitEvent(name string, from int, match func(p map[string]any) bool) (int, wsFrame) {
	c.t.Helper()
	return c.waitFor("event "+name, from, func(f wsFrame) bool {
		return f.isEvent(name) && (match == nil || match(f.payload()))
	})
}

// all returns a copy of the frames received so far.
func (c *wsClient) all() []wsFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wsFrame(nil), c.frames...)
}

// describe summarises the frames received, for failure messages.
func (c *wsClient) describe() string {
	var b strings.Builder
	frames := c.all()
	fmt.Fprintf(&b, "%d frames:", len(frames))
	for i, f := range frames {
		if i >= 60 {
			fmt.Fprintf(&b, "\n  ...")
			break
		}
		fmt.Fprintf(&b, "\n  %s", bytes.TrimSpace(f.raw))
	}
	return b.String()
}

// closed waits for the server to close the socket and returns the close
// frame's code and reason (code 1006 when the connection dropped without a
// close frame).
func (c *wsClient) closed() (int, string) {
	c.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ended, err, changed := c.ended, c.closeErr, c.changed
		c.mu.Unlock()
		if ended {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text
			}
			return websocket.CloseAbnormalClosure, err.Error()
		}
		select {
		case <-changed:
		case <-deadline.C:
			c.t.Fatalf("socket still open after %s; received %s", waitTimeout, c.describe())
		}
	}
}

// isOpen reports whether the reader is still running.
func (c *wsClient) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.ended
}

// eventSeqs checks the counters of every event frame received: conn seq
// gap-free from 1, a numeric stateVersion and apiVersion "v1"; response
// frames carry no seq. It returns the event frames.
func checkCounters(t *testing.T, frames []wsFrame) []wsFrame {
	t.Helper()
	var events []wsFrame
	for _, f := range frames {
		switch f.typ() {
		case "res":
			if _, has := f.m["seq"]; has {
				t.Fatalf("response frame carries seq: %s", f.raw)
			}
		case "event":
			events = append(events, f)
			if got := num(t, f.m, "seq"); got != int64(len(events)) {
				t.Fatalf("event frame %d has conn seq %d: %s", len(events), got, f.raw)
			}
			if num(t, f.m, "stateVersion") < 0 || f.m["apiVersion"] != "v1" {
				t.Fatalf("event frame counters: %s", f.raw)
			}
		default:
			t.Fatalf("frame of unknown type: %s", f.raw)
		}
	}
	return events
}
