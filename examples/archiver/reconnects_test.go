package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan/behaviour"
	"github.com/stretchr/testify/require"
)

// TestArchiverSealsReconnectStorms: the Stream connections' reconnects, read from the source's
// health counter, reach the behaviour rules, and a storm is sealed and alerted.
func TestArchiverSealsReconnectStorms(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	dir := t.TempDir()
	l, err := ledgerdir.Open(ctx, dir, layout.DefaultOrigin, ledger.Options{})
	require.NoError(t, err)
	defer l.Close()
	c := &config{}
	sv, err := c.loadSurveillance()
	require.NoError(t, err)
	sv.rules, err = behaviour.ParseRules([]byte(`{"version": "t", "rules": [
	  {"id": "flapping", "severity": "high", "reconnect_storm": {"count": 3, "window": "1h"}}]}`))
	require.NoError(t, err)
	storms := make(chan *surveil.Sealed, 4)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	log := slog.New(slog.DiscardHandler)
	const source = "dingtalk/app-under-test"
	m, err := sv.start(ctx, &wg, l.Ledger, dir, source, log, func(_ context.Context, s *surveil.Sealed) error {
		if s.Behaviour != nil {
			storms <- s
		}
		return nil
	})
	require.NoError(t, err)
	var reconnects atomic.Int64
	reconnects.Store(5) // before the watch starts: not counted
	wg.Go(func() { watchReconnects(ctx, reconnects.Load, 5, func() *surveil.Monitor { return m }, source, log) })

	reconnects.Add(2)
	select {
	case s := <-storms:
		t.Fatalf("a storm after 2 reconnects: %+v", s.Behaviour)
	case <-time.After(2500 * time.Millisecond):
	}
	reconnects.Add(1)
	select {
	case s := <-storms:
		require.Equal(t, "flapping", s.Behaviour.Rule)
		require.Equal(t, source, s.Behaviour.Source)
		require.True(t, s.Fresh)
		a := s.Alerts()
		require.Len(t, a, 1)
		require.Equal(t, "dingtalk", a[0].Platform)
		require.Equal(t, "app-under-test", a[0].Tenant)
	case <-time.After(10 * time.Second):
		t.Fatal("no storm sealed after 3 reconnects")
	}
}
