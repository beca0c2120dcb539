package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/internal/ledgerdir"
)

// gatewayRun is what a capture through the local gateway did.
type gatewayRun struct {
	pushes      int
	health      dingtalk.Health
	ackP50      time.Duration
	ackP99      time.Duration
	mediaServed int
}

// captureViaGateway pushes raw bot payloads through a local DingTalk gateway to a real
// dingtalk.Source (the official Stream SDK) that appends them to l, the way a deployment
// captures: each push is acknowledged only after its message is durable, and attachments are
// fetched through the download API, stored as encrypted blobs and sealed as media records.
func captureViaGateway(ctx context.Context, l *ledgerdir.Ledger, sink capture.Sink, payloads [][]byte, log *slog.Logger) (gatewayRun, error) {
	var run gatewayRun
	gw := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 5 * time.Second, RobotCode: sampleRobot})
	defer gw.Close()
	// Serve the attachments the payloads name, as DingTalk's file links would.
	for _, raw := range payloads {
		m, err := dingtalk.ParseBotMessage(raw)
		if err != nil {
			continue
		}
		for _, a := range m.Attachments {
			if a.Ref != "" {
				gw.AddFile(a.Ref, a.MediaType, sampleAttachment(m.Kind, a.Ref))
				run.mediaServed++
			}
		}
	}
	jkey, err := l.StateKey(ctx, "media-journal")
	if err != nil {
		return run, err
	}
	journal, err := dingtalk.NewDirJournal(filepath.Join(l.Dir, "media-journal"), jkey)
	clear(jkey)
	if err != nil {
		return run, err
	}
	src, err := dingtalk.NewSource(dingtalk.Options{
		ClientID: dingtalktest.DefaultClientID, ClientSecret: dingtalktest.DefaultClientSecret,
		OpenAPIHost: gw.URL, Records: l, Logger: log,
		Media: dingtalk.MediaOptions{Journal: journal, Blobs: l, RetryMin: 100 * time.Millisecond, QPS: 50},
	})
	if err != nil {
		return run, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, sink) }()
	defer func() {
		stop()
		<-done
	}()
	wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := gw.WaitConns(wait, 1); err != nil {
		return run, fmt.Errorf("the SDK did not connect to the local gateway: %w", err)
	}
	for _, raw := range payloads {
		gw.PushBotMessage(raw)
		run.pushes++
	}
	if err := gw.Wait(wait); err != nil {
		return run, fmt.Errorf("waiting for acknowledgements: %w", err)
	}
	// Wait until every attachment has a sealed outcome: stored, or a failure record (a failed
	// fetch stays in the journal and is retried at the next run).
	for h := src.Health(); h.PendingMedia > 0 && h.MediaStored+h.MediaFailed < int64(run.mediaServed); h = src.Health() {
		select {
		case <-wait.Done():
			return run, fmt.Errorf("attachments still pending after 2 minutes (%d stored, %d failed)", h.MediaStored, h.MediaFailed)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		done <- nil
		return run, err
	}
	done <- nil
	run.health = src.Health()
	var lat []time.Duration
	for _, d := range gw.Deliveries() {
		if d.Acked && d.Code == 200 {
			lat = append(lat, d.AckedAt.Sub(d.SentAt))
		}
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		run.ackP50 = lat[len(lat)/2]
		run.ackP99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return run, nil
}

// sampleAttachment makes deterministic content for an attachment of a sample message.
func sampleAttachment(kind, ref string) []byte {
	switch kind {
	case capture.KindAudio:
		return []byte("#!AMR\n" + ref + " sample voice note")
	case capture.KindFile:
		return []byte("%PDF-1.4\n% sample order instruction " + ref + "\n%%EOF\n")
	}
	return append([]byte("\x89PNG\r\n\x1a\n"), []byte("sample picture "+ref)...)
}
