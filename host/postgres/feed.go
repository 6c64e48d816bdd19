package postgres

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// The commit feed delivers every event committed on the database, by this
// process or another, to Options.OnCommit: exactly once, per run in seq
// order, without gaps. The events table is the source of truth; a
// notification only says which run to read.
//
//   - Every event appended notifies eventsChannel with "<first seq> <last
//     seq> <run id>" (first = last: one event); PostgreSQL delivers the
//     notifications on commit only, in commit order.
//   - A dedicated connection LISTENs. For a notified run the feed reads the
//     events after the last seq it delivered for that run (one query for a
//     batch of runs) and calls OnCommit. A notification at or below that
//     seq (this process's own commits, delivered directly) costs nothing.
//   - Update delivers its own events directly after commit when they
//     follow the run's last delivered seq; otherwise the run is read.
//   - When the listening connection breaks, the feed reconnects with
//     backoff and then reads every run that got events from a transaction
//     that may have committed since the last barrier (below), so nothing
//     committed while it was away is lost.
//
// The feed remembers the last delivered seq of each run it saw, in a map
// bounded by evicting runs whose last event was run.completed a while ago,
// and the least recently delivered ones past maxRuns. It must then still
// know, for a run it has no entry for, which of its events were delivered:
// this is what the transaction id in events.xid and the barrier are for.
// The feed keeps safeXmin, a transaction id such that every transaction
// that committed events after the last barrier has an id >= safeXmin, and
// every event with an id below it was delivered already (or committed
// before the store opened). A barrier is a notification on the feed's own
// channel, sent (once per barrierEvery while deliveries happen) with
// pg_snapshot_xmin(pg_current_snapshot()), the oldest transaction still
// running: every transaction that commits later has an id at or above it,
// and every notification of a transaction that committed before it was
// received before the barrier (notifications arrive in commit order). Once
// the runs named before the barrier are delivered, its xmin becomes
// safeXmin. A run is evicted only when all its delivered events have ids
// below safeXmin; so for a run without an entry, the events with
// xid >= safeXmin are exactly those not yet delivered, and the feed
// delivers those (the contiguous suffix of them, in seq order).
type feed struct {
	s        *Store
	onCommit func([]host.Event)
	connCfg  *pgx.ConnConfig
	// barrierChannel is this feed's own channel, for its barriers.
	barrierChannel string

	// mu serialises delivery: OnCommit is only ever called under it. It
	// guards the fields below. Lock order: mu, then the pool's locks; mu
	// is never taken while a transaction of this store is open.
	mu   sync.Mutex
	runs map[string]*runPos
	lru  *list.List // of *runPos, least recently delivered first
	// completed holds the runs whose last event is run.completed, in the
	// order they completed.
	completed *list.List
	pending   map[string]bool
	safeXmin  uint64
	// needCatchUp is set when the listening connection was re-established
	// and the runs of the time it was away are still to be read.
	needCatchUp bool
	// lastDelivery is when OnCommit was last called; barrierCovers is the
	// send time of the newest applied barrier: deliveries before it are
	// covered by safeXmin.
	lastDelivery  time.Time
	barrierCovers time.Time
	barrierSent   time.Time
	fetchFailing  bool

	// Bounds of the map and the barrier period; tests shrink them.
	maxRuns      int
	completedTTL time.Duration
	barrierEvery time.Duration
	// evictions counts the runs forgotten, for tests.
	evictions int

	cancel context.CancelFunc
	done   chan struct{}
}

// runPos is what the feed delivered of one run.
type runPos struct {
	runID string
	seq   int64         // last delivered seq
	xid   uint64        // highest transaction id among the delivered events
	at    time.Time     // when last delivered
	elem  *list.Element // in feed.lru
	// doneElem is in feed.completed while the last delivered event is
	// run.completed, else nil.
	doneElem *list.Element
}

const (
	// defaultBarrierEvery is how often barriers are sent while events are
	// delivered, and how long the listener waits for a notification before
	// it does its periodic work (retries, barriers, eviction).
	defaultBarrierEvery = time.Second
	// drainWait is how long the listener waits for one more notification
	// of a batch.
	drainWait = time.Millisecond
	// maxNotifications bounds one batch.
	maxNotifications = 512
	// fetchRows bounds the events read by one query.
	fetchRows = 2000
	// feedTimeout bounds the feed's queries.
	feedTimeout = 10 * time.Second
	// probeEvery is how long the listening connection may stay quiet
	// before it is probed.
	probeEvery = 15 * time.Second
	// Reconnection backoff of the listening connection.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second

	defaultMaxRuns      = 100_000
	defaultCompletedTTL = time.Minute
)

// startFeed opens the listening connection and starts the listener
// goroutine; events committed after it returns are delivered.
func startFeed(ctx context.Context, s *Store, cfg *pgx.ConnConfig, onCommit func([]host.Event)) (*feed, error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	f := &feed{
		s: s, onCommit: onCommit, connCfg: cfg,
		barrierChannel: "smithers_barrier_" + hex.EncodeToString(id[:]),
		runs:           map[string]*runPos{},
		lru:            list.New(),
		completed:      list.New(),
		pending:        map[string]bool{},
		maxRuns:        defaultMaxRuns,
		completedTTL:   defaultCompletedTTL,
		barrierEvery:   defaultBarrierEvery,
		done:           make(chan struct{}),
	}
	conn, xmin, err := f.connect(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("commit feed: %w", err)
	}
	f.safeXmin = xmin
	lctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.listen(lctx, conn)
	return f, nil
}

// close stops the listener and waits for it.
func (f *feed) close() {
	f.cancel()
	<-f.done
}

// connect opens a listening connection. With xmin it also returns the
// oldest running transaction id, read before LISTEN: every transaction
// whose notification the new connection will not receive committed before
// that point, and every later one has an id at or above it.
func (f *feed) connect(ctx context.Context, xmin bool) (*pgx.Conn, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, feedTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, f.connCfg)
	if err != nil {
		return nil, 0, err
	}
	var x uint64
	if xmin {
		var s string
		if err := conn.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text").Scan(&s); err != nil {
			_ = conn.Close(context.Background())
			return nil, 0, err
		}
		if x, err = strconv.ParseUint(s, 10, 64); err != nil {
			_ = conn.Close(context.Background())
			return nil, 0, fmt.Errorf("transaction id %q: %w", s, err)
		}
	}
	if err := f.listenOn(ctx, conn); err != nil {
		_ = conn.Close(context.Background())
		return nil, 0, err
	}
	return conn, x, nil
}

// listenOn subscribes conn to the feed's channels. Subscribing again is a
// no-op, which makes it the probe of a quiet connection too (the
// connection's last statement stays a LISTEN, as operators looking for the
// listener in pg_stat_activity expect).
func (f *feed) listenOn(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "LISTEN "+eventsChannel+"; LISTEN "+pgx.Identifier{f.barrierChannel}.Sanitize())
	return err
}

// listen is the listener goroutine: it receives notifications, delivers
// the runs they name, and keeps the listening connection up.
func (f *feed) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(f.done)
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	backoff := minBackoff
	heard := time.Now() // when conn last proved alive
	for ctx.Err() == nil {
		if conn == nil {
			var err error
			if conn, _, err = f.connect(ctx, false); err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			backoff, heard = minBackoff, time.Now()
			f.s.log.Info("commit feed: listening again; reading what was committed meanwhile")
			f.mu.Lock()
			f.needCatchUp = true
			f.mu.Unlock()
		}
		batch, err := f.receive(ctx, conn)
		f.handle(ctx, batch)
		switch {
		case len(batch) > 0:
			heard = time.Now()
		case err == nil && time.Since(heard) >= probeEvery:
			// A connection whose peer vanished without a word (a network
			// partition) would wait quietly for ever: ask it something.
			pctx, cancel := context.WithTimeout(ctx, feedTimeout)
			err = f.listenOn(pctx, conn)
			cancel()
			heard = time.Now()
		}
		if err != nil && ctx.Err() == nil {
			f.s.log.Warn("commit feed: the listening connection broke; reconnecting", "err", err)
			_ = conn.Close(context.Background())
			conn = nil
		}
	}
}

// tick is how long the listener waits for a notification.
func (f *feed) tick() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.barrierEvery
}

// receive waits up to a tick for a notification and returns it with the
// ones that follow at once. A nil error with no notification is a quiet
// tick.
func (f *feed) receive(ctx context.Context, conn *pgx.Conn) ([]*pgconn.Notification, error) {
	var batch []*pgconn.Notification
	wait := f.tick()
	for len(batch) < maxNotifications {
		wctx, cancel := context.WithTimeout(ctx, wait)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil || conn.IsClosed() || !pgconn.Timeout(err) {
				return batch, err
			}
			return batch, nil // the wait ran out: the connection is fine
		}
		batch = append(batch, n)
		wait = drainWait
	}
	return batch, nil
}

// handle delivers the runs a batch of notifications names, applies its
// newest barrier once everything named before it is delivered, and does
// the periodic work: the catch-up after a reconnection, retries of failed
// reads, eviction, and sending the next barrier.
func (f *feed) handle(ctx context.Context, batch []*pgconn.Notification) {
	f.mu.Lock()
	var barrier uint64
	var barrierSent time.Time
	for _, n := range batch {
		if n.Channel == f.barrierChannel {
			sent, xmin, ok := parseBarrier(n.Payload)
			if ok && xmin >= barrier {
				barrier, barrierSent = xmin, sent
			}
			continue
		}
		last, runID, ok := parseNotification(n.Payload)
		if !ok {
			continue
		}
		if p := f.runs[runID]; p != nil && last <= p.seq {
			continue // delivered already: this process's own commit
		}
		f.pending[runID] = true
	}
	err := f.catchUp(ctx)
	if err == nil {
		err = f.fetchPending(ctx)
	}
	if err == nil && barrier > 0 {
		f.safeXmin = max(f.safeXmin, barrier)
		if barrierSent.After(f.barrierCovers) {
			f.barrierCovers = barrierSent
		}
	}
	f.evict(time.Now())
	sendBarrier := f.lastDelivery.After(f.barrierCovers) && time.Since(f.barrierSent) >= f.barrierEvery
	if sendBarrier {
		f.barrierSent = time.Now()
	}
	sentAt := f.barrierSent
	f.mu.Unlock()
	if sendBarrier {
		bctx, cancel := context.WithTimeout(ctx, feedTimeout)
		_, err := f.s.pool.Exec(bctx, `SELECT pg_notify($1, $2 || ' ' || pg_snapshot_xmin(pg_current_snapshot())::text)`,
			f.barrierChannel, strconv.FormatInt(sentAt.UnixNano(), 10))
		cancel()
		if err != nil && ctx.Err() == nil {
			f.s.log.Debug("commit feed: barrier not sent", "err", err)
		}
	}
}

// local delivers the events of a transaction this process just committed
// (xid its id): directly, for a run whose events follow the last delivered
// seq, else by reading the run.
func (f *feed) local(events []host.Event, xid uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := map[string]int64{}
	for _, e := range events {
		last[e.RunID] = e.Seq
	}
	direct := map[string]bool{}
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.RunID] {
			continue
		}
		seen[e.RunID] = true // e is the run's first event in the transaction
		p := f.runs[e.RunID]
		switch {
		case f.pending[e.RunID]:
			// A read of the run is owed already; it takes these too.
		case p != nil && last[e.RunID] <= p.seq:
			// The listener was quicker.
		case p != nil && e.Seq == p.seq+1,
			// A new run. (Had its events been delivered and the run
			// evicted since, their id would be below safeXmin.)
			p == nil && e.Seq == 1 && xid >= f.safeXmin:
			direct[e.RunID] = true
		default:
			f.pending[e.RunID] = true
		}
	}
	var out []host.Event
	for _, e := range events {
		if direct[e.RunID] {
			out = append(out, e)
		}
	}
	if len(out) > 0 {
		now := time.Now()
		for _, e := range out {
			f.advance(e, xid, now)
		}
		f.onCommit(out)
	}
	if len(f.pending) > 0 {
		// On failure the runs stay pending for the listener's next turn.
		_ = f.fetchPending(context.Background())
	}
}

// catchUp, after a reconnection, marks every run that got events from a
// transaction that may have committed while the feed was not listening.
func (f *feed) catchUp(ctx context.Context) error {
	if !f.needCatchUp {
		return nil
	}
	qctx, cancel := context.WithTimeout(ctx, feedTimeout)
	defer cancel()
	rows, err := f.s.pool.Query(qctx, `SELECT DISTINCT run_id FROM events WHERE xid >= $1::text::xid8`,
		strconv.FormatUint(f.safeXmin, 10))
	ids, err := collect(rows, err, scanString)
	if err != nil {
		f.fetchFailed(err)
		return err
	}
	for _, id := range ids {
		f.pending[id] = true
	}
	f.needCatchUp = false
	return nil
}

// fetchSQL reads the events to deliver of a batch of runs: after the last
// delivered seq of a known run, and the undelivered ones (xid >= safeXmin)
// of a run without an entry (after_seq -1).
const fetchSQL = `SELECT e.run_id, e.seq, e.id, e.name, e.payload, e.at_ms, e.xid::text
	FROM unnest($1::text[], $2::bigint[]) AS p(run_id, after_seq)
	JOIN events e ON e.run_id = p.run_id AND e.seq > p.after_seq
	WHERE p.after_seq >= 0 OR e.xid >= $3::text::xid8
	ORDER BY e.run_id, e.seq
	LIMIT $4`

// fetched is one row of fetchSQL.
type fetched struct {
	e   host.Event
	xid uint64
}

// fetchPending reads and delivers the pending runs, fetchRows events per
// query. A run stays pending until a query returned all of its events.
func (f *feed) fetchPending(ctx context.Context) error {
	for len(f.pending) > 0 {
		ids := make([]string, 0, len(f.pending))
		for id := range f.pending {
			ids = append(ids, id)
		}
		slices.Sort(ids) // byte order, as the query's ORDER BY (collation "C")
		after := make([]int64, len(ids))
		for i, id := range ids {
			after[i] = -1
			if p := f.runs[id]; p != nil {
				after[i] = p.seq
			}
		}
		qctx, cancel := context.WithTimeout(ctx, feedTimeout)
		rows, err := f.s.pool.Query(qctx, fetchSQL, ids, after, strconv.FormatUint(f.safeXmin, 10), fetchRows)
		got, err := collect(rows, err, func(row pgx.Row) (fetched, error) {
			var (
				r       fetched
				payload []byte
				xid     string
			)
			if err := row.Scan(&r.e.RunID, &r.e.Seq, &r.e.StateVersion, &r.e.Name, &payload, &r.e.AtMs, &xid); err != nil {
				return r, err
			}
			r.e.Payload = payload
			var err error
			r.xid, err = strconv.ParseUint(xid, 10, 64)
			return r, err
		})
		cancel()
		if err != nil {
			f.fetchFailed(err)
			return err
		}
		if f.fetchFailing {
			f.fetchFailing = false
			f.s.log.Info("commit feed: reading committed events again")
		}
		for i := 0; i < len(got); {
			j := i + 1
			for j < len(got) && got[j].e.RunID == got[i].e.RunID {
				j++
			}
			f.deliverFetched(got[i:j])
			i = j
		}
		// A full page may have cut the last run it reached short, and not
		// reached the runs after it.
		cut := ""
		if len(got) == fetchRows {
			cut = got[len(got)-1].e.RunID
		}
		for _, id := range ids {
			if cut == "" || id < cut {
				delete(f.pending, id)
			}
		}
	}
	return nil
}

// fetchFailed logs the first failure of a streak (not the cancellation of
// Close).
func (f *feed) fetchFailed(err error) {
	if !f.fetchFailing && !errors.Is(err, context.Canceled) {
		f.fetchFailing = true
		f.s.log.Warn("commit feed: cannot read committed events; retrying", "err", err)
	}
}

// deliverFetched delivers the events read for one run.
func (f *feed) deliverFetched(rows []fetched) {
	runID := rows[0].e.RunID
	p := f.runs[runID]
	if p == nil {
		// The undelivered events of a run without an entry are a suffix of
		// its events: keep the contiguous tail (a gap before it can only
		// hold events committed before the store opened).
		k := len(rows) - 1
		for k > 0 && rows[k-1].e.Seq == rows[k].e.Seq-1 {
			k--
		}
		rows = rows[k:]
	} else if rows[0].e.Seq != p.seq+1 {
		f.s.log.Warn("commit feed: events of a run left its window before they were delivered",
			"runId", runID, "delivered", p.seq, "next", rows[0].e.Seq)
	}
	events := make([]host.Event, len(rows))
	now := time.Now()
	for i, r := range rows {
		events[i] = r.e
		f.advance(r.e, r.xid, now)
	}
	f.onCommit(events)
}

// advance records that e, written by transaction xid, is delivered.
func (f *feed) advance(e host.Event, xid uint64, now time.Time) {
	p := f.runs[e.RunID]
	if p == nil {
		p = &runPos{runID: e.RunID}
		p.elem = f.lru.PushBack(p)
		f.runs[e.RunID] = p
	} else {
		f.lru.MoveToBack(p.elem)
	}
	p.seq = e.Seq
	p.xid = max(p.xid, xid)
	p.at = now
	if p.doneElem != nil {
		f.completed.Remove(p.doneElem)
		p.doneElem = nil
	}
	if e.Name == host.EventRunCompleted {
		p.doneElem = f.completed.PushBack(p)
	}
	f.lastDelivery = now
}

// evict forgets runs whose last event was run.completed completedTTL ago,
// and the least recently delivered runs past maxRuns, provided that all
// their delivered events have ids below safeXmin (see feed). Both lists
// are in time order, so each stops at the first run it must keep: the
// work is the runs forgotten, plus one.
func (f *feed) evict(now time.Time) {
	for e := f.completed.Front(); e != nil; e = f.completed.Front() {
		p := e.Value.(*runPos)
		if now.Sub(p.at) < f.completedTTL || !f.evictable(p) {
			break
		}
		f.forget(p)
	}
	for e := f.lru.Front(); e != nil && len(f.runs) > f.maxRuns; e = f.lru.Front() {
		p := e.Value.(*runPos)
		if !f.evictable(p) {
			break
		}
		f.forget(p)
	}
}

func (f *feed) evictable(p *runPos) bool {
	return p.xid < f.safeXmin && !f.pending[p.runID]
}

func (f *feed) forget(p *runPos) {
	f.lru.Remove(p.elem)
	if p.doneElem != nil {
		f.completed.Remove(p.doneElem)
	}
	delete(f.runs, p.runID)
	f.evictions++
}

// parseNotification reads "<first seq> <last seq> <run id>" and returns
// the last seq and the run.
func parseNotification(s string) (last int64, runID string, ok bool) {
	parts := strings.SplitN(s, " ", 3)
	if len(parts) != 3 || parts[2] == "" {
		return 0, "", false
	}
	_, err1 := strconv.ParseInt(parts[0], 10, 64)
	last, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, "", false
	}
	return last, parts[2], true
}

// parseBarrier reads "<sent unix ns> <xmin>".
func parseBarrier(s string) (time.Time, uint64, bool) {
	sent, xmin, ok := strings.Cut(s, " ")
	if !ok {
		return time.Time{}, 0, false
	}
	ns, err1 := strconv.ParseInt(sent, 10, 64)
	x, err2 := strconv.ParseUint(xmin, 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, 0, false
	}
	return time.Unix(0, ns), x, true
}
