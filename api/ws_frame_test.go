package api

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestDecodeFrame(t *testing.T) {
	for _, tc := range []struct {
		in, code string
	}{
		{`{"type":"req","id":"1","method":"getRun","params":{"runId":"a"}}`, ""},
		{`{"type":"req","id":"1","method":"runs.get"}`, ""},
		{`not json`, "INVALID_INPUT"},
		{`[1]`, "INVALID_REQUEST"},
		{`{"type":"res","id":"1","method":"getRun"}`, "INVALID_FRAME"},
		{`{"type":"req","id":1,"method":"getRun"}`, "INVALID_FRAME"},
		{`{"type":"req","id":"` + strings.Repeat("x", 129) + `","method":"getRun"}`, "INVALID_INPUT"},
		{`{"type":"req","id":"1","method":"Bad-Name"}`, "INVALID_INPUT"},
		{`{"type":"req","id":"1","method":"getRun","params":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "INVALID_INPUT"},
		{`{"type":"req","id":"1","method":"getRun"} {}`, "INVALID_INPUT"},
	} {
		_, err := decodeFrame([]byte(tc.in))
		if got := host.ErrorCode(err); got != tc.code {
			t.Errorf("%.60s: code %q, want %q (%v)", tc.in, got, tc.code, err)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{`{"type":"req","id":"1","method":"getRun","params":{}}`, `{}`, `[`, `{"type":"req","id":"x","method":"a.b","params":[[[]]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeFrame(data)
		if err == nil {
			if !validMethodChars(req.method) || len([]rune(req.id)) > maxIDLength {
				t.Fatalf("accepted invalid frame %q %q", req.id, req.method)
			}
			return
		}
		if host.ErrorCode(err) == "" {
			t.Fatalf("error without a code: %v", err)
		}
	})
}

// TestSharedEventEncodings: the frames assembled from the encodings shared
// by every socket (a broadcast's head, a run event's tail) are the frames
// eventFrame writes for one socket.
func TestSharedEventEncodings(t *testing.T) {
	for _, e := range []host.Event{
		{RunID: "r-1", Seq: 7, StateVersion: 42, Name: "node.finished", Payload: json.RawMessage(`{"runId":"r-1","nodeId":"a \"b\"","state":"finished"}`)},
		{RunID: "r-2", Seq: 1, StateVersion: 3, Name: "run.completed"},
	} {
		want := eventFrame(nil, e.Name, e.Payload, 11, e.StateVersion)
		if got := frameTail(broadcastHead(e), 11, e.StateVersion); string(got) != string(want) {
			t.Errorf("broadcast\n got %s\nwant %s", got, want)
		}
		st := &runStream{id: "stream-\"1\"", runID: e.RunID}
		want = eventFrame(nil, "run.event", runEventPayload(st, e), 12, e.StateVersion)
		got := append([]byte(`{"type":"event","event":"run.event","payload":{"streamId":`), strconv.Quote(st.id)...)
		got = frameTail(append(got, runEventTail(e)...), 12, e.StateVersion)
		if string(got) != string(want) {
			t.Errorf("run.event\n got %s\nwant %s", got, want)
		}
	}
}
