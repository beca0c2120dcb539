package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/alert"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/scan/behaviour"
	"github.com/commseal/commseal/store"
)

// surveillance is the archiver's scanning of what it captured: the active lexicon (reloaded on
// SIGHUP), behaviour rules if given, and the monitor that seals findings from DIR/surveil.cursor.
type surveillance struct {
	lexPath string
	lv      *scan.Live
	rules   *behaviour.Rules
	feed    *surveil.Feed // what the ledger seals, handed over as it is sealed
	// watchEvery is how often the lexicon file is looked at for a change (default 2 s).
	watchEvery time.Duration
}

// loadSurveillance reads the lexicon (the embedded one without -lexicon) and the behaviour
// rules, before the ledger is opened: a bad file is a usage error.
func (c *config) loadSurveillance() (*surveillance, error) {
	s := &surveillance{lexPath: c.lexicon, feed: surveil.NewFeed(0)}
	sc, err := readLexicon(c.lexicon)
	if err != nil {
		return nil, err
	}
	if s.lv, err = scan.NewLive(sc); err != nil {
		return nil, err
	}
	if c.rules != "" {
		b, err := os.ReadFile(c.rules)
		if err != nil {
			return nil, fmt.Errorf("-rules: %w", err)
		}
		if s.rules, err = behaviour.ParseRules(b); err != nil {
			return nil, fmt.Errorf("-rules %s: %w", c.rules, err)
		}
	}
	return s, nil
}

func readLexicon(path string) (*scan.Scanner, error) {
	sc, err := scan.LoadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-lexicon: %w", err)
	}
	return sc, nil
}

// start runs the monitor (monitor) on wg until ctx ends (run). onSealed receives each sealed
// finding (alerts). source names the archiver's capture for the behaviour rules
// (source_silence, reconnect_storm): every message it captures is from it. It returns the
// monitor, for its position and its Reconnect.
func (s *surveillance) start(ctx context.Context, wg *sync.WaitGroup, l *ledger.Ledger, dir, source string, log *slog.Logger,
	onSealed func(context.Context, *surveil.Sealed) error) (*surveil.Monitor, error) {
	m, err := s.monitor(l, dir, source, log, onSealed)
	if err != nil {
		return nil, err
	}
	s.run(ctx, wg, m, log)
	return m, nil
}

// monitor makes the monitor of the ledger in dir, with the lexicon and behaviour rules: what
// start runs, and what startLeased runs while it holds the lease.
func (s *surveillance) monitor(l *ledger.Ledger, dir, source string, log *slog.Logger,
	onSealed func(context.Context, *surveil.Sealed) error) (*surveil.Monitor, error) {
	opts := surveil.Options{Lexicon: s.lv, CursorFile: filepath.Join(dir, layout.CursorFile), OnSealed: onSealed, Logger: log, Feed: s.feed}
	if s.rules != nil {
		d, err := behaviour.New(s.rules, behaviour.Options{SourceOf: func(*capture.Message) string { return source }})
		if err != nil {
			return nil, fmt.Errorf("-rules: %w", err)
		}
		opts.Behaviour = d
	}
	return surveil.New(l, opts)
}

// run runs m on wg until ctx ends, and reloads the lexicon file on SIGHUP or when it changes.
func (s *surveillance) run(ctx context.Context, wg *sync.WaitGroup, m *surveil.Monitor, log *slog.Logger) {
	wg.Go(func() { _ = m.Run(ctx, 200*time.Millisecond) })
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	watch := time.NewTicker(s.every())
	wg.Go(func() {
		defer signal.Stop(hup)
		defer watch.Stop()
		last := s.stamp()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.reload(log)
				last = s.stamp()
			case <-watch.C: // the file changed: reload it as SIGHUP does
				if st := s.stamp(); st != last {
					last = st
					s.reload(log)
				}
			}
		}
	})
}

// surveillanceLease is the store lease (store.Leases) held by the one archiver that scans a
// shared ledger.
const surveillanceLease = "surveillance"

// startLeased makes the monitor, and runs it while this archiver holds the store's
// surveillance lease, checking or trying to take it every every: of several archivers on one
// shared ledger, one scans at a time, everything in the ledger (its monitor reads the others'
// entries from the store), and when it stops, or loses its connection to the store, another
// takes over within every, from its own cursor (findings already sealed are not sealed or
// alerted again). A monitor that cannot be made (a bad cursor file, bad rules) fails here, at
// the start, not when the lease comes. It returns the monitor running now, nil while another
// archiver holds the lease.
func (s *surveillance) startLeased(ctx context.Context, wg *sync.WaitGroup, l *ledger.Ledger, leases store.Leases, every time.Duration,
	dir, source string, log *slog.Logger, onSealed func(context.Context, *surveil.Sealed) error) (func() *surveil.Monitor, error) {
	m, err := s.monitor(l, dir, source, log, onSealed)
	if err != nil {
		return nil, err
	}
	var cur atomic.Pointer[surveil.Monitor]
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		var stop context.CancelFunc
		var running sync.WaitGroup
		end := func() {
			if stop != nil {
				stop()
				running.Wait()
				stop = nil
				cur.Store(nil)
			}
		}
		defer end()
		for {
			held, err := leases.HoldLease(ctx, surveillanceLease)
			if err != nil && ctx.Err() == nil {
				log.Warn("archiver: surveillance lease", "err", err)
			}
			switch {
			case held && stop == nil:
				mctx, cancel := context.WithCancel(ctx)
				stop = cancel
				s.run(mctx, &running, m, log)
				cur.Store(m)
				log.Info("archiver: surveillance: this archiver holds the lease and scans the ledger")
			case !held && stop != nil:
				log.Warn("archiver: surveillance: the lease is lost; another archiver scans")
				end()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return cur.Load, nil
}

// watchReconnects tells the monitor's behaviour rules of each reconnect of the Stream
// connections beyond the seen first ones (reconnect_storm), reading the source's count every
// second until ctx ends. monitor returns the monitor running, nil when none is (a shared
// archiver that does not hold the surveillance lease): its reconnects go unseen.
func watchReconnects(ctx context.Context, reconnects func() int64, seen int64, monitor func() *surveil.Monitor, source string, log *slog.Logger) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		m := monitor()
		for n := reconnects(); seen < n; seen++ {
			if m == nil {
				continue // another archiver scans: this one's reconnects are not its to see
			}
			if err := m.Reconnect(ctx, source, now); err != nil && ctx.Err() == nil {
				log.Warn("archiver: sealing a reconnect storm", "err", err)
			}
		}
	}
}

// every is how often the lexicon file is looked at for a change.
func (s *surveillance) every() time.Duration {
	if s.watchEvery > 0 {
		return s.watchEvery
	}
	return 2 * time.Second
}

// stamp is what tells a changed lexicon file: its size and modification time ("" without one).
func (s *surveillance) stamp() string {
	if s.lexPath == "" {
		return ""
	}
	fi, err := os.Stat(s.lexPath)
	if err != nil {
		return "missing"
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

// reload reads the lexicon file again and swaps it in; a bad file keeps the lexicon in force.
func (s *surveillance) reload(log *slog.Logger) {
	if s.lexPath == "" {
		log.Warn("archiver: no -lexicon file to reload; the embedded lexicon stays")
		return
	}
	sc, err := readLexicon(s.lexPath)
	if err == nil {
		_, err = s.lv.Swap(sc)
	}
	if err != nil {
		log.Error("archiver: lexicon reload failed; the previous lexicon stays in force", "err", err)
		return
	}
	log.Warn("archiver: lexicon reloaded", "name", sc.Name(), "version", sc.Version())
}

// notifier raises alerts: always in the log, and through a durable outbox per configured
// receiver.
type notifier struct {
	alerters []alert.Alerter
	outboxes []*alert.Outbox
	log      *slog.Logger
}

// alerts opens the outboxes the flags ask for under DIR/alerts and runs their delivery on wg
// until ctx ends.
func (c *config) alerts(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger) (*notifier, error) {
	n := &notifier{alerters: []alert.Alerter{alert.NewLog(log)}, log: log}
	add := func(name string, s alert.Sender, opts alert.OutboxOptions) error {
		opts.Logger = log
		ob, err := alert.OpenOutbox(filepath.Join(c.dir, "alerts", name), s, opts)
		if err != nil {
			return err
		}
		n.outboxes = append(n.outboxes, ob)
		n.alerters = append(n.alerters, ob)
		wg.Go(func() { _ = ob.Run(ctx) })
		return nil
	}
	if c.alertWebhook != "" {
		secret, err := os.ReadFile(c.alertSecret)
		if err != nil {
			return nil, err
		}
		hook, err := alert.NewWebhook(alert.WebhookOptions{URL: c.alertWebhook, Secret: bytes.TrimSpace(secret)})
		if err != nil {
			return nil, err
		}
		if err := add("webhook", hook, alert.OutboxOptions{}); err != nil {
			n.close()
			return nil, err
		}
	}
	if c.alertDingTalk != "" {
		secret, err := os.ReadFile(c.alertDingTalkSecret)
		if err != nil {
			n.close()
			return nil, err
		}
		robot, err := alert.NewDingTalk(alert.DingTalkOptions{URL: c.alertDingTalk, Secret: string(bytes.TrimSpace(secret))})
		if err != nil {
			n.close()
			return nil, err
		}
		if err := add("dingtalk", robot, alert.OutboxOptions{MinInterval: alert.DingTalkInterval}); err != nil {
			n.close()
			return nil, err
		}
	}
	return n, nil
}

// onSealed raises a sealed finding's alerts through every alerter; the monitor retries the
// step if one fails (a full outbox), so nothing is lost.
func (n *notifier) onSealed(ctx context.Context, s *surveil.Sealed) error {
	alerts := s.Alerts() // once, for every alerter
	var errs []error
	for _, a := range n.alerters {
		if _, isOutbox := a.(*alert.Outbox); !isOutbox && !s.Fresh {
			continue // the log has said it already; outboxes deduplicate on the id
		}
		for _, x := range alerts {
			errs = append(errs, a.Alert(ctx, x))
		}
	}
	return errors.Join(errs...)
}

func (n *notifier) close() {
	for _, ob := range n.outboxes {
		if err := ob.Close(); err != nil {
			n.log.Error("archiver: closing an alert outbox", "err", err)
		}
	}
	n.outboxes = nil
}
