package tokenstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Document is a parsed token store file: the top-level object and its
// "tokens" object, each kept as an ordered list of raw members, so that an
// encoded Document keeps every key, value and order that was not changed
// (a version-2 upstream store's "version", "actionTokens", and a grant's
// "secret" and "tokenHash" among them). The typed view of a grant is
// decoded from its raw value on demand (Grant, Grants).
//
// A Document returned by Parse is not modified by its exported methods, so
// it may be read by any number of goroutines.
type Document struct {
	top       object
	tokens    object
	hasTokens bool
}

// Parse parses a token store file: a JSON object whose "tokens" member,
// when present, is an object of grants keyed by raw token. Only the shape of
// the file is checked here; grants are checked by Grants. The error says
// what is wrong in words that never contain a token: "the file is empty",
// "the file is JSON null", "the file is not a JSON object", "invalid JSON:
// …", `"tokens" is JSON null`, `"tokens" is not a JSON object`.
func Parse(data []byte) (*Document, error) {
	if err := expectObject(data, "the file"); err != nil {
		return nil, err
	}
	d := &Document{}
	if err := json.Unmarshal(data, &d.top); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	raw, ok := d.top.get("tokens")
	if !ok {
		return d, nil
	}
	if err := expectObject(raw, `"tokens"`); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &d.tokens); err != nil {
		return nil, fmt.Errorf(`invalid "tokens": %v`, err)
	}
	d.hasTokens = true
	return d, nil
}

// HasTokens reports whether the file has a "tokens" member. The gateway
// refuses a file without one; the CLI treats it as a store without tokens.
func (d *Document) HasTokens() bool { return d.hasTokens }

// Tokens returns the raw tokens of the store in file order.
func (d *Document) Tokens() []string {
	out := make([]string, len(d.tokens))
	for i, m := range d.tokens {
		out[i] = m.key
	}
	return out
}

// Grant returns the typed view of token's grant and whether the store holds
// token. The view is lenient (a field of the wrong type is left empty); err
// says why the grant is malformed, as Grants would refuse it.
func (d *Document) Grant(token string) (g Grant, found bool, err error) {
	raw, ok := d.tokens.get(token)
	if !ok {
		return Grant{}, false, nil
	}
	g, err = decodeGrant(token, raw)
	return g, true, err
}

// Grants returns every grant keyed by raw token, refusing the whole store
// when one grant is malformed (the first in file order is named by its token
// id, never by the token), so that the gateway fails closed. A Document
// without "tokens" has no grants.
func (d *Document) Grants() (map[string]Grant, error) {
	out := make(map[string]Grant, len(d.tokens))
	for _, m := range d.tokens {
		g, err := decodeGrant(m.key, m.value)
		if err != nil {
			return nil, fmt.Errorf("malformed grant for token id %s: %v", TokenID(m.key), err)
		}
		out[m.key] = g
	}
	return out, nil
}

// Encode renders the store as the file holds it: JSON indented by two
// spaces with a trailing newline, members in their original order and
// "tokens" first when the file had none.
func (d *Document) Encode() ([]byte, error) {
	top := make(object, 0, len(d.top)+1)
	if !d.hasTokens {
		top = append(top, member{key: "tokens"})
	}
	top = append(top, d.top...)
	top.set("tokens", d.tokens.marshal())
	var out bytes.Buffer
	if err := json.Indent(&out, top.marshal(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// setGrant stores raw as token's grant, appending a new token at the end.
func (d *Document) setGrant(token string, raw json.RawMessage) {
	d.tokens.set(token, raw)
}

// expectObject reports an error naming what unless data is a JSON object
// (it does not validate the object itself).
func expectObject(data []byte, what string) error {
	t := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(t) == 0:
		return fmt.Errorf("%s is empty", what)
	case bytes.HasPrefix(t, []byte("null")) && len(bytes.TrimSpace(t)) == 4:
		return fmt.Errorf("%s is JSON null", what)
	case t[0] != '{':
		return fmt.Errorf("%s is not a JSON object", what)
	}
	return nil
}

// object is a JSON object as an ordered list of raw members.
type object []member

type member struct {
	key   string
	value json.RawMessage
}

// UnmarshalJSON decodes a JSON object keeping its member order; a repeated
// key keeps its first position and its last value, as JSON.parse does.
// json.Unmarshal has validated data before calling it, so syntax errors
// carry the standard library's wording.
func (o *object) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	var out object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		out.set(key, v)
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	*o = out
	return nil
}

func (o object) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

func (o *object) set(key string, value json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].value = value
			return
		}
	}
	*o = append(*o, member{key: key, value: value})
}

// marshal renders the object compactly; values are written as stored.
func (o object) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, m.key)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// writeJSONString writes s as a JSON string without HTML escaping.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode appends a newline.
}
