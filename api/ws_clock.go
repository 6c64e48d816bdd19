package api

import "time"

// duties are the periodic work of a socket's writer that came due.
type duties struct {
	handshake bool // the handshake window ended: close the socket unless it connected
	ping      bool // send a ping
	revoke    bool // re-check the socket's credentials
	tick      bool // send a "tick" heartbeat event (connected sockets)
	beat      bool // send run.heartbeat on each run-event stream
}

// writerClock keeps the due times of a socket writer's periodic duties on
// one timer, so that the writer waits on one channel for all of them.
// Periodic duties keep their rhythm (the next is one period after the one
// that came due, or after now if the writer was late).
type writerClock struct {
	lim                                           wsLimits
	timer                                         *time.Timer
	handshakeAt, pingAt, revokeAt, tickAt, beatAt time.Time // zero: not scheduled
}

func newWriterClock(now time.Time, lim wsLimits) *writerClock {
	k := &writerClock{
		lim:         lim,
		handshakeAt: now.Add(lim.handshake),
		pingAt:      now.Add(lim.ping),
		revokeAt:    now.Add(lim.revokeCheck),
		beatAt:      now.Add(lim.streamHeartbeat),
	}
	k.timer = time.NewTimer(time.Hour)
	k.arm(now)
	return k
}

// arm sets the timer to the earliest scheduled duty, or stops it when
// none is.
func (k *writerClock) arm(now time.Time) {
	n := k.next()
	if n.IsZero() {
		k.timer.Stop()
		return
	}
	k.timer.Reset(n.Sub(now))
}

// C fires when a duty may be due; pass its time to due.
func (k *writerClock) C() <-chan time.Time { return k.timer.C }

func (k *writerClock) stop() { k.timer.Stop() }

// connected ends the handshake window and (re)starts the tick heartbeat, on
// each successful connect.
func (k *writerClock) connected(now time.Time) {
	k.handshakeAt = time.Time{}
	k.tickAt = now.Add(k.lim.heartbeat)
	k.arm(now)
}

// due reports the duties due at now, schedules their next times and
// re-arms the timer.
func (k *writerClock) due(now time.Time) duties {
	var d duties
	if !k.handshakeAt.IsZero() && !now.Before(k.handshakeAt) {
		d.handshake = true
		k.handshakeAt = time.Time{}
	}
	d.ping = advance(&k.pingAt, now, k.lim.ping)
	d.revoke = advance(&k.revokeAt, now, k.lim.revokeCheck)
	d.tick = advance(&k.tickAt, now, k.lim.heartbeat)
	d.beat = advance(&k.beatAt, now, k.lim.streamHeartbeat)
	k.arm(now)
	return d
}

// advance reports whether the periodic duty at *at is due at now, and if
// so moves *at to its next time.
func advance(at *time.Time, now time.Time, period time.Duration) bool {
	if at.IsZero() || now.Before(*at) {
		return false
	}
	if period <= 0 {
		*at = time.Time{} // a duty without a period is off, not due again at once
		return true
	}
	*at = at.Add(period)
	if !at.After(now) {
		*at = now.Add(period)
	}
	return true
}

// next is the earliest scheduled duty.
func (k *writerClock) next() time.Time {
	var n time.Time
	for _, t := range []time.Time{k.handshakeAt, k.pingAt, k.revokeAt, k.tickAt, k.beatAt} {
		if !t.IsZero() && (n.IsZero() || t.Before(n)) {
			n = t
		}
	}
	return n
}
