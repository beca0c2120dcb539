package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/commseal/commseal/ledger/console"
)

// consoleSetup is the compliance console's accounts and TLS, read from the files the flags name.
type consoleSetup struct {
	opts console.Options
	tls  *tls.Config // nil: plain HTTP on loopback (-console-insecure-http)
}

// checkConsole checks that the -console flags go together.
func (c *config) checkConsole() error {
	if c.consoleAddr == "" {
		if c.consoleAccounts != "" || c.consoleCert != "" || c.consoleKey != "" || c.consoleInsecure {
			return errors.New("the -console-* options need -console-addr")
		}
		return nil
	}
	switch {
	case c.consoleAccounts == "":
		return errors.New("-console-addr needs -console-accounts")
	case (c.consoleCert == "") != (c.consoleKey == ""):
		return errors.New("-console-tls-cert and -console-tls-key go together")
	case c.consoleCert == "" && !c.consoleInsecure:
		return errors.New("-console-addr needs -console-tls-cert and -console-tls-key (session cookies are Secure), or -console-insecure-http on loopback")
	case c.consoleCert != "" && c.consoleInsecure:
		return errors.New("-console-insecure-http and -console-tls-cert exclude each other")
	}
	if c.consoleInsecure {
		host, _, err := net.SplitHostPort(c.consoleAddr)
		a, perr := netip.ParseAddr(host)
		if err != nil || (host != "localhost" && (perr != nil || !a.IsLoopback())) {
			return fmt.Errorf("-console-insecure-http serves only a loopback address, not %q", c.consoleAddr)
		}
	}
	return nil
}

// loadConsole reads the accounts and the TLS key pair.
func (c *config) loadConsole() (*consoleSetup, error) {
	accts, err := console.LoadAccounts(c.consoleAccounts)
	if err != nil {
		return nil, err
	}
	s := &consoleSetup{opts: console.Options{Accounts: accts, InsecureCookies: c.consoleInsecure}}
	if c.consoleCert != "" {
		cert, err := tls.LoadX509KeyPair(c.consoleCert, c.consoleKey)
		if err != nil {
			return nil, fmt.Errorf("console TLS certificate: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}
