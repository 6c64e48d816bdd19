package stream

import (
	"sync"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Encodings is how many encodings of one event a Queued caches.
const Encodings = 2

// Queued is a published event as every subscriber that wants it receives
// it: one value shared by all of them, which caches encodings of the event
// so that an event fanned out to a thousand sockets is encoded once, not
// once per socket.
type Queued struct {
	host.Event
	once [Encodings]sync.Once
	enc  [Encodings][]byte
}

// Encoded returns encode(e) for the encoding kind (0 <= kind <
// Encodings), computed by the first caller and shared with the others;
// the caller must not change the bytes. Kinds are the caller's: each must
// always be given the same function.
func (q *Queued) Encoded(kind int, encode func(host.Event) []byte) []byte {
	q.once[kind].Do(func() { q.enc[kind] = encode(q.Event) })
	return q.enc[kind]
}
