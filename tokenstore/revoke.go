package tokenstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Revoke marks token as revoked at now in the store at path and returns its
// token id. The entry is kept, with every field Revoke does not know;
// revoking an already revoked token keeps the first revocation time. An
// unknown token (or a missing store) is CodeTokenNotFound; a corrupt store
// is left untouched and reported with CodeTokenStoreCorrupt; other failures
// are CodeTokenRevokeFailed. Locking and atomicity are as for Issue.
func Revoke(path, token string, now time.Time) (tokenID string, err error) {
	notFound := &host.Error{Code: CodeTokenNotFound,
		Message: "Token was not found in the local Smithers token store"}
	failed := func(step string, err error) (string, error) {
		return "", wrapStoreError(CodeTokenRevokeFailed, "Could not revoke the token", step, err)
	}
	if token == "" {
		return "", notFound
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", notFound
	}
	unlock, err := lockStore(path)
	if err != nil {
		return failed("lock the store", err)
	}
	defer unlock()
	doc, err := readDocument(path)
	if err != nil {
		return failed("read the store", err)
	}
	raw, ok := doc.tokens.get(token)
	if !ok {
		return "", notFound
	}
	var fields object
	if expectObject(raw, "the grant") != nil || json.Unmarshal(raw, &fields) != nil {
		return "", corruptStore(path, "the grant of token id "+TokenID(token)+" is not a JSON object")
	}
	g, _ := decodeGrant(token, raw)
	nowMs := now.UnixMilli()
	if g.Revoked(nowMs) {
		return g.TokenID, nil
	}
	fields.set("revokedAtMs", json.RawMessage(fmt.Sprint(nowMs)))
	doc.setGrant(token, fields.marshal())
	if err := writeDocument(path, doc); err != nil {
		return failed("write the store", err)
	}
	return g.TokenID, nil
}
