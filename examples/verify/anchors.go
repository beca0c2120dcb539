package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
)

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// anchorPolicy builds verify.Anchors from the flags.
func anchorPolicy(logVKey, rootsFile string, witnesses []string, quorum int) (verify.Anchors, error) {
	var a verify.Anchors
	if rootsFile != "" {
		pem, err := os.ReadFile(rootsFile)
		if err != nil {
			return a, fmt.Errorf("-tsa-roots: %w", err)
		}
		a.TSARoots = x509.NewCertPool()
		if !a.TSARoots.AppendCertsFromPEM(pem) {
			return a, fmt.Errorf("-tsa-roots %s: no PEM certificate in it", rootsFile)
		}
	}
	if quorum != 0 && len(witnesses) == 0 {
		return a, errors.New("-witness-quorum needs -witness keys")
	}
	if len(witnesses) > 0 {
		if quorum == 0 {
			quorum = len(witnesses)
		}
		p, err := seal.NewWitnessPolicy(logVKey, quorum, witnesses...)
		if err != nil {
			return a, fmt.Errorf("-witness: %w", err)
		}
		a.Witnesses = p
	}
	return a, nil
}

// printAnchors prints, per anchored checkpoint, its size, each token's time and TSA, and the
// witnesses.
func printAnchors(w io.Writer, cps []verify.AnchoredCheckpoint) {
	if len(cps) == 0 {
		return
	}
	fmt.Fprintf(w, "  %d anchored checkpoints:\n", len(cps))
	for _, cp := range cps {
		var parts []string
		for _, s := range cp.Stamps {
			how := "token checked"
			if !s.Checked {
				how = "token not checked: no -tsa-roots"
			}
			parts = append(parts, fmt.Sprintf("time-stamped %s by %s (%s)", s.Time.UTC().Format(time.RFC3339), s.TSA, how))
		}
		switch {
		case len(cp.Witnessed) > 0:
			q := "policy met"
			if !cp.Quorum {
				q = "policy not met"
			}
			parts = append(parts, fmt.Sprintf("cosigned by %s (%s)", strings.Join(cp.Witnessed, ", "), q))
		case cp.Cosigned > 0:
			parts = append(parts, fmt.Sprintf("%d cosignatures (not checked: no -witness)", cp.Cosigned))
		}
		fmt.Fprintf(w, "    size %d: %s\n", cp.Size, strings.Join(parts, "; "))
	}
}

// writeAnchors writes each anchored checkpoint and its tokens into dir.
func writeAnchors(dir string, cps []verify.AnchoredCheckpoint) error {
	if err := durable.MkdirAll(dir); err != nil {
		return fmt.Errorf("-anchors: %w", err)
	}
	for _, cp := range cps {
		if len(cp.Checkpoint) > 0 {
			if err := durable.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.checkpoint", cp.Size)), cp.Checkpoint); err != nil {
				return fmt.Errorf("-anchors: %w", err)
			}
		}
		for _, s := range cp.Stamps {
			if err := durable.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.%d.tsr", cp.Size, s.Entry)), s.Token); err != nil {
				return fmt.Errorf("-anchors: %w", err)
			}
		}
	}
	return nil
}
