package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/scan/behaviour"
)

// surveillance is the archiver's scanning of what it captured: the active lexicon (reloaded on
// SIGHUP), behaviour rules if given, and the monitor that seals findings from DIR/surveil.cursor.
type surveillance struct {
	lexPath string
	lv      *scan.Live
	rules   *behaviour.Rules
}

// loadSurveillance reads the lexicon (the embedded one without -lexicon) and the behaviour
// rules, before the ledger is opened: a bad file is a usage error.
func (c *config) loadSurveillance() (*surveillance, error) {
	s := &surveillance{lexPath: c.lexicon}
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
	if path == "" {
		return scan.Default()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-lexicon: %w", err)
	}
	lex, err := scan.ParseLexicon(b)
	if err != nil {
		return nil, fmt.Errorf("-lexicon %s: %w", path, err)
	}
	return scan.Compile(lex)
}

// start runs the monitor on wg until ctx ends, and reloads the lexicon file on SIGHUP. onSealed
// receives each sealed finding (alerts).
func (s *surveillance) start(ctx context.Context, wg *sync.WaitGroup, l *ledger.Ledger, dir string, log *slog.Logger,
	onSealed func(context.Context, *surveil.Sealed) error) error {
	opts := surveil.Options{Lexicon: s.lv, CursorFile: filepath.Join(dir, layout.CursorFile), OnSealed: onSealed, Logger: log}
	if s.rules != nil {
		d, err := behaviour.New(s.rules, behaviour.Options{})
		if err != nil {
			return fmt.Errorf("-rules: %w", err)
		}
		opts.Behaviour = d
	}
	m, err := surveil.New(l, opts)
	if err != nil {
		return err
	}
	wg.Go(func() { _ = m.Run(ctx, 200*time.Millisecond) })
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Go(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.reload(log)
			}
		}
	})
	return nil
}

// reload reads the lexicon file again and swaps it in; a bad file keeps the lexicon in force.
func (s *surveillance) reload(log *slog.Logger) {
	if s.lexPath == "" {
		log.Warn("archiver: SIGHUP: no -lexicon file to reload; the embedded lexicon stays")
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

// logFinding is the alert every finding gets in the archiver's log: references and severities,
// never content.
func logFinding(log *slog.Logger) func(context.Context, *surveil.Sealed) error {
	return func(_ context.Context, s *surveil.Sealed) error {
		if !s.Fresh {
			return nil
		}
		for _, f := range s.Findings {
			log.Warn("archiver: finding", "annotation", s.Index, "message", s.MessageAt, "rule", f.Rule,
				"category", f.Category, "severity", f.Severity, "field", f.Field, "lexicon", s.Lexicon.Version)
		}
		if b := s.Behaviour; b != nil {
			log.Warn("archiver: behaviour", "annotation", s.Index, "rule", b.Rule, "kind", b.Kind, "severity", b.Severity, "reason", b.Reason)
		}
		return nil
	}
}
