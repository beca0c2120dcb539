package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/commseal/commseal/anchor/tsa"
	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger/anchor"
)

// listFlag is a repeatable flag.
type listFlag []string

func (f *listFlag) String() string     { return strings.Join(*f, " ") }
func (f *listFlag) Set(s string) error { *f = append(*f, s); return nil }

// anchorer builds the Anchorer the -tsa and -witness flags ask for, or nil for none.
func (c *config) anchorer(l *ledgerdir.Ledger, log *slog.Logger) (*anchor.Anchorer, error) {
	if len(c.tsas) == 0 && len(c.witnesses) == 0 {
		if c.tsaRoots != "" {
			return nil, errors.New("-tsa-roots needs -tsa")
		}
		return nil, nil
	}
	opts := anchor.Options{Every: c.anchorEvery, Logger: log}
	if len(c.tsas) > 0 {
		if c.tsaRoots == "" {
			return nil, errors.New("-tsa needs -tsa-roots (the roots its certificate chains to)")
		}
		pem, err := os.ReadFile(c.tsaRoots)
		if err != nil {
			return nil, fmt.Errorf("-tsa-roots: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tsa-roots %s: no PEM certificate in it", c.tsaRoots)
		}
		var list []tsa.TSA
		for _, s := range c.tsas {
			name, url, ok := strings.Cut(s, "=")
			if !ok || name == "" || url == "" {
				return nil, fmt.Errorf("-tsa %q: want NAME=URL", s)
			}
			list = append(list, tsa.TSA{Name: name, URL: url})
		}
		if opts.TSA, err = tsa.NewClient(roots, list, tsa.Options{Logger: log}); err != nil {
			return nil, fmt.Errorf("-tsa: %w", err)
		}
	}
	for _, s := range c.witnesses {
		url, vkey, ok := strings.Cut(s, "=")
		if !ok || url == "" || vkey == "" {
			return nil, fmt.Errorf("-witness %q: want URL=VKEY", s)
		}
		w, err := witness.NewClient(url, vkey, nil)
		if err != nil {
			return nil, fmt.Errorf("-witness %q: %w", s, err)
		}
		opts.Witnesses = append(opts.Witnesses, w)
	}
	return anchor.New(l.Ledger, opts)
}
