package surveil_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger/alert"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/stretchr/testify/require"
)

type recorder struct {
	mu sync.Mutex
	as []alert.Alert
}

func (r *recorder) Alert(_ context.Context, a alert.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.as = append(r.as, a)
	return nil
}

// TestFindingsRaiseAlertsThroughAnOutbox: every flagged message raises one alert per rule,
// valid, with references and no content; the ids are the same when a restarted monitor raises
// them again; through an outbox and a webhook every alert reaches the receiver.
func TestFindingsRaiseAlertsThroughAnOutbox(t *testing.T) {
	l := openLedger(t)
	appendMessages(t, l, 12, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	lv := live(t, scan.DefaultLexiconJSON())
	rec := &recorder{}
	m, err := surveil.New(l, surveil.Options{Lexicon: lv, OnSealed: surveil.Notify(rec)})
	require.NoError(t, err)
	catchUp(t, m)
	require.Len(t, rec.as, 8)
	ids := map[string]bool{}
	for _, a := range rec.as {
		require.NoError(t, a.Validate())
		require.NotEmpty(t, a.MessageID)
		require.Equal(t, lv.Scanner().Version(), a.LexiconVersion)
		require.Empty(t, a.Excerpt)
		b, _ := json.Marshal(a)
		for _, text := range texts {
			require.NotContains(t, string(b), text, "no content in an alert")
		}
		ids[a.ID] = true
	}
	require.Len(t, ids, 8)

	again := &recorder{}
	m2, err := surveil.New(l, surveil.Options{Lexicon: lv, OnSealed: surveil.Notify(again)})
	require.NoError(t, err)
	catchUp(t, m2)
	for _, a := range again.as {
		require.True(t, ids[a.ID], "the same finding, the same id")
	}

	var mu sync.Mutex
	got := map[string]bool{}
	secret := []byte("0123456789abcdef0123")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if alert.VerifySignature(secret, r.Header.Get(alert.HeaderTimestamp), r.Header.Get(alert.HeaderSignature), body, time.Now(), 0) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
	}))
	defer srv.Close()
	hook, err := alert.NewWebhook(alert.WebhookOptions{URL: srv.URL, Secret: secret})
	require.NoError(t, err)
	ob, err := alert.OpenOutbox(t.TempDir(), hook, alert.OutboxOptions{MinBackoff: time.Millisecond})
	require.NoError(t, err)
	defer ob.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ob.Run(ctx)
	m3, err := surveil.New(l, surveil.Options{Lexicon: lv, OnSealed: surveil.Notify(ob)})
	require.NoError(t, err)
	catchUp(t, m3)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 8
	}, 10*time.Second, 10*time.Millisecond)
	for id := range got {
		require.True(t, ids[id])
	}
}
