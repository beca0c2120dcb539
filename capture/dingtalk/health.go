package dingtalk

import (
	"strconv"
	"time"
)

type healthCounters struct {
	started, lastFrame, lastActivity, silentSince time.Time
	silent                                        bool
	silences                                      int64
	frames, systemFrames, messages, events        int64
	reconnects, connectFailures, disconnects      int64
	acks                                          map[int]int64
	later                                         int64
	duplicates, captureErrors, quotaExhausted     int64
	sinkErrors                                    int64
}

// ConnectionHealth is the state of one of the source's Stream connections.
type ConnectionHealth struct {
	Connection int       `json:"connection"`
	State      string    `json:"state"` // StateConnecting, StateConnected, StateReconnecting or StateStopped
	Since      time.Time `json:"since"`
	Connects   int       `json:"connects"`             // successful opens so far
	LastError  string    `json:"last_error,omitempty"` // why the last attempt failed
}

// Health is a snapshot of a source's capture health. Counters are totals since the Source was
// created.
type Health struct {
	State       string             `json:"state"` // connected (all), degraded (some), reconnecting (none), or a slot state when all agree
	Connections []ConnectionHealth `json:"connections"`
	Started     time.Time          `json:"started"`
	LastFrame   time.Time          `json:"last_frame"`    // any frame, SYSTEM pings included
	LastContent time.Time          `json:"last_content"`  // last bot message or event (or start)
	Silent      bool               `json:"silent"`        // no content within Options.SilenceWindow
	Silences    int64              `json:"silences"`      // silent periods reported
	Reconnects  int64              `json:"reconnects"`    // connections re-opened after one died
	ConnectFail int64              `json:"connect_fails"` // failed connection attempts
	Disconnects int64              `json:"disconnects"`   // SYSTEM disconnects received

	Frames         int64            `json:"frames"`          // bot message and event frames handled
	SystemFrames   int64            `json:"system_frames"`   // SYSTEM ping and disconnect frames
	Messages       int64            `json:"messages"`        // bot messages appended (duplicates included)
	Events         int64            `json:"events"`          // events recorded as context (duplicates included)
	Acks           map[string]int64 `json:"acks"`            // answers by code ("200", "500")
	Later          int64            `json:"later"`           // events answered LATER
	Duplicates     int64            `json:"duplicates"`      // appends the sink reported as already stored
	CaptureErrors  int64            `json:"capture_errors"`  // frames sealed as capture errors
	QuotaExhausted int64            `json:"quota_exhausted"` // of which quota-exhausted payloads
	SinkErrors     int64            `json:"sink_errors"`     // failed appends (answered so DingTalk pushes again)

	PendingMedia int   `json:"pending_media"` // attachment fetches not yet sealed
	MediaStored  int64 `json:"media_stored"`
	MediaFailed  int64 `json:"media_failed"` // failure records sealed (each retried later)
}

// Health returns a snapshot of the source's capture health. It is safe to call at any time,
// also while Run is not running.
func (s *Source) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := Health{
		Started: s.h.started, LastFrame: s.h.lastFrame, LastContent: s.h.lastActivity,
		Silent: s.h.silent, Silences: s.h.silences,
		Reconnects: s.h.reconnects, ConnectFail: s.h.connectFailures, Disconnects: s.h.disconnects,
		Frames: s.h.frames, SystemFrames: s.h.systemFrames, Messages: s.h.messages, Events: s.h.events,
		Acks: map[string]int64{}, Later: s.h.later, Duplicates: s.h.duplicates,
		CaptureErrors: s.h.captureErrors, QuotaExhausted: s.h.quotaExhausted, SinkErrors: s.h.sinkErrors,
	}
	for k, v := range s.h.acks {
		h.Acks[strconv.Itoa(k)] = v
	}
	connected := 0
	for _, sl := range s.slots {
		h.Connections = append(h.Connections, ConnectionHealth{
			Connection: sl.n, State: sl.state, Since: sl.since, Connects: sl.connects, LastError: sl.lastErr,
		})
		if sl.state == StateConnected {
			connected++
		}
	}
	switch {
	case len(s.slots) == 0:
		h.State = StateStopped
	case connected == len(s.slots):
		h.State = StateConnected
	case connected > 0:
		h.State = "degraded"
	default:
		h.State = s.slots[0].state
		for _, sl := range s.slots[1:] {
			if sl.state != h.State {
				h.State = StateReconnecting
			}
		}
	}
	if s.media != nil {
		h.PendingMedia, h.MediaStored, h.MediaFailed = s.media.counts()
	}
	return h
}
