package api

import (
	"bytes"
	"encoding/json"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// wsRequest is a decoded client frame {type:"req", id, method, params}.
type wsRequest struct {
	id     string
	method string
	params any
}

// invalidFrameID is the response id of a frame that could not be parsed or
// validated (docs/rpc.md).
const invalidFrameID = "invalid"

// decodeFrame parses and validates one WebSocket message: valid JSON, an
// object, within the bounds of §1.8 (the whole frame), type "req", a string
// id of at most 128 characters, and a valid method name.
func decodeFrame(data []byte) (wsRequest, error) {
	var root any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil || dec.More() {
		return wsRequest{}, errInvalidInput("Gateway RPC payload must be valid JSON.")
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return wsRequest{}, errInvalidRequest("Gateway frame must be a JSON object")
	}
	if err := checkBounds(obj); err != nil {
		return wsRequest{}, err
	}
	if t, _ := obj["type"].(string); t != "req" {
		return wsRequest{}, host.Errorf(host.CodeInvalidFrame, `Gateway frame type must be "req"`)
	}
	id, ok := obj["id"].(string)
	if !ok {
		return wsRequest{}, host.Errorf(host.CodeInvalidFrame, "Gateway frame id must be a string")
	}
	if utf16Len(id) > maxIDLength {
		return wsRequest{}, errInvalidInput("id exceeds the maximum length of %d characters.", maxIDLength)
	}
	name, err := validMethodName(obj["method"])
	if err != nil {
		return wsRequest{}, err
	}
	return wsRequest{id: id, method: name, params: obj["params"]}, nil
}
