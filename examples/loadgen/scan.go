package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/internal/watchlist"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
)

// scanning runs surveillance beside the appenders, as the archiver does, and measures its lag:
// from a flagged message's sent time (just before its append) to its annotation being sealed.
type scanning struct {
	m      *surveil.Monitor
	lv     *scan.Live
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	lag    []time.Duration
	sealed int
}

// startScanning starts the monitor with the default lexicon, plus extraTerms generated terms.
func startScanning(ctx context.Context, led *ledgerdir.Ledger, feed *surveil.Feed, extraTerms int) (*scanning, error) {
	s, err := scan.Default()
	if extraTerms > 0 {
		s, err = scan.Compile(watchlist.Lexicon(extraTerms))
	}
	if err != nil {
		return nil, err
	}
	sc := &scanning{done: make(chan error, 1)}
	if sc.lv, err = scan.NewLive(s); err != nil {
		return nil, err
	}
	sc.m, err = surveil.New(led.Ledger, surveil.Options{Lexicon: sc.lv, CursorFile: filepath.Join(led.Dir, layout.CursorFile), Feed: feed,
		OnSealed: func(_ context.Context, s *surveil.Sealed) error {
			if s.Fresh && s.Message != nil {
				sc.mu.Lock()
				sc.lag = append(sc.lag, time.Since(s.Message.SentAt))
				sc.sealed++
				sc.mu.Unlock()
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	// Not bounded by -duration (ctx): after the appenders stop, the scan catches up (finish).
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sc.cancel = cancel
	go func() { sc.done <- sc.m.Run(rctx, 20*time.Millisecond) }()
	return sc, nil
}

// finish waits until the monitor has scanned everything up to size, stops it and reports.
func (sc *scanning) finish(size uint64, w io.Writer) error {
	start := time.Now()
	v := sc.lv.Scanner().Version()
	for sc.m.Position(v) < size && time.Since(start) < time.Minute {
		time.Sleep(10 * time.Millisecond)
	}
	caughtUp := time.Since(start)
	sc.cancel()
	if err := <-sc.done; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("loadgen: scanning stopped: %w", err)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	slices.Sort(sc.lag)
	pct := func(p float64) time.Duration {
		if len(sc.lag) == 0 {
			return 0
		}
		return sc.lag[min(len(sc.lag)-1, int(p*float64(len(sc.lag))))].Round(time.Millisecond)
	}
	fmt.Fprintf(w, "loadgen: scanning: %d annotations sealed off the ack path; lag from a message's send to its findings sealed p50 %v p99 %v; caught up %v after the last append\n",
		sc.sealed, pct(0.5), pct(0.99), caughtUp.Round(time.Millisecond))
	if sc.m.Position(v) < size {
		return fmt.Errorf("loadgen: scanning had not caught up a minute after the last append")
	}
	return nil
}
