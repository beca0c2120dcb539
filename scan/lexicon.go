package scan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits on a lexicon. Anything larger is refused with ErrTooLarge: a lexicon of that size is a
// mistake (or an attack), and refusing it beats building an automaton that exhausts memory.
const (
	MaxLexiconBytes = 64 << 20  // size of a lexicon file
	MaxRules        = 100_000   // rules in one lexicon
	MaxTerms        = 1_000_000 // terms, exclusions and near terms of all rules together
	// (and their bytes together no more than MaxLexiconBytes, also for lexicons built in code)
	MaxTermBytes  = 1024 // one term, in bytes of UTF-8
	MaxNameBytes  = 128  // a lexicon name, rule id or category
	MaxNearWithin = 200  // the largest "within" of a near clause, in characters
)

// Sentinel errors that a *LexiconError wraps; branch on them with errors.Is.
var (
	ErrSyntax          = errors.New("malformed JSON")                                    // not JSON, wrong types, trailing data
	ErrUnknownField    = errors.New("unknown field")                                     // a misspelt or unsupported field
	ErrMissingField    = errors.New("missing or empty")                                  // a required field is absent or empty
	ErrEmptyTerms      = errors.New("no terms")                                          // a rule (or near set) with no terms
	ErrEmptyTerm       = errors.New("term has no letters or digits")                     // a term that matches nothing
	ErrDuplicateTerm   = errors.New("duplicate term")                                    // the same term twice in one list
	ErrDuplicateID     = errors.New("duplicate rule id")                                 // two rules with one id
	ErrUnknownSeverity = errors.New("unknown severity (want info, low, medium or high)") // a severity not in the list
	ErrInvalidUTF8     = errors.New("invalid UTF-8")                                     // a string that is not UTF-8
	ErrInvalidValue    = errors.New("invalid value")                                     // a bad id, format or distance
	ErrTooLarge        = errors.New("too large")                                         // beyond one of the Max limits
)

// LexiconError reports what is wrong with a lexicon and where: the rule (its id, or "#N" for the
// N-th rule, counting from 1, when the id itself is unusable) and the field, such as "terms[2]"
// or "near.within". It wraps one of the sentinel errors above.
type LexiconError struct {
	Lexicon string // the lexicon's name, if known
	Rule    string // the rule's id, "#N" when the id is unusable, or "" for the lexicon itself
	Field   string // the JSON field, with an index for list elements
	Err     error  // a sentinel error, possibly wrapped with detail
}

// Error formats the error as `scan: lexicon "name": rule "id": field "f": problem`.
func (e *LexiconError) Error() string {
	var b strings.Builder
	b.WriteString("scan: lexicon")
	if e.Lexicon != "" {
		fmt.Fprintf(&b, " %q", e.Lexicon)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, ": rule %q", e.Rule)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the underlying sentinel error.
func (e *LexiconError) Unwrap() error { return e.Err }

// Severity ranks a finding for reviewers. The zero value is not a valid severity.
type Severity uint8

// The severities a rule may have, from least to most serious.
const (
	Info Severity = iota + 1
	Low
	Medium
	High
)

var severityNames = [...]string{Info: "info", Low: "low", Medium: "medium", High: "high"}

// String returns the lexicon spelling of s ("info", "low", "medium", "high").
func (s Severity) String() string {
	if s >= Info && s <= High {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", uint8(s))
}

// ParseSeverity returns the Severity spelled s in a lexicon.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if i > 0 && n == s {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownSeverity, s)
}

// MarshalText encodes s as its lexicon spelling.
func (s Severity) MarshalText() ([]byte, error) {
	if s < Info || s > High {
		return nil, fmt.Errorf("scan: %w: %d", ErrUnknownSeverity, uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a lexicon spelling of a severity.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Lexicon is a named set of rules. Build one with ParseLexicon, ReadLexicon or DefaultLexicon,
// or fill the fields in code; Compile validates it either way.
type Lexicon struct {
	Name  string // names the lexicon in errors and in Scanner.Name; UTF-8 with no control characters
	Rules []Rule // at least one; ids unique
}

// Rule flags a message when one of its terms occurs (or, with Near, when two terms occur close
// together), unless an exclusion covers the occurrence.
type Rule struct {
	ID       string   // unique within the lexicon; reported on every finding
	Category string   // groups rules for reporting, e.g. "guarantee_of_returns"
	Severity Severity // how serious a finding is
	// Description says what the rule is for, for reviewers; it has no effect on matching.
	Description string
	Terms       []string // words or phrases; any one occurring is a finding
	Exclude     []string // phrases that cancel a hit of this rule when they cover it
	Near        *Near    // optional: two term sets that must occur within a distance

	// CaseSensitive keeps letter case significant (all other folding still applies).
	CaseSensitive bool
	// WordBoundary requires that a term starting or ending with a letter or digit of a
	// space-separated script (Latin, Greek, Cyrillic, ...) is not directly preceded or followed
	// in the text by another such letter or digit. Chinese characters never need a boundary.
	WordBoundary bool
	// Exact matches the term's bytes as written, with no folding of any kind.
	Exact bool
}

// Near asks for a term of A and a term of B no more than Within characters apart (counted in the
// original text between the two occurrences; overlapping or touching occurrences are 0 apart).
type Near struct {
	A      []string // the terms that are reported, each paired with its nearest term of B
	B      []string // the terms that must occur near one of A
	Within int      // the largest distance in characters, 0 to MaxNearWithin
}

// The JSON shapes. Strings are decoded through jstr so that invalid UTF-8 is reported with its
// rule and field instead of being silently replaced by encoding/json.
type lexiconJSON struct {
	Format jstr              `json:"format"`
	Name   jstr              `json:"name"`
	Rules  []json.RawMessage `json:"rules"`
}

type ruleJSON struct {
	ID            jstr      `json:"id"`
	Category      jstr      `json:"category"`
	Severity      jstr      `json:"severity"`
	Description   jstr      `json:"description"`
	Terms         []jstr    `json:"terms"`
	Exclude       []jstr    `json:"exclude"`
	Near          *nearJSON `json:"near"`
	CaseSensitive bool      `json:"case_sensitive"`
	WordBoundary  bool      `json:"word_boundary"`
	Exact         bool      `json:"exact"`
}

type nearJSON struct {
	A      []jstr `json:"a"`
	B      []jstr `json:"b"`
	Within *int   `json:"within"`
}

type jstr struct {
	s   string
	bad bool // the raw JSON string held invalid UTF-8
}

// UnmarshalJSON keeps a string's invalid UTF-8 as a flag for validation to report.
func (j *jstr) UnmarshalJSON(b []byte) error {
	if !utf8.Valid(b) {
		j.bad = true
		return nil
	}
	return json.Unmarshal(b, &j.s)
}

// ParseLexicon parses a lexicon in the JSON format described in the package documentation and
// validates it. Errors are *LexiconError values naming the rule and field.
func ParseLexicon(data []byte) (*Lexicon, error) {
	if len(data) > MaxLexiconBytes {
		return nil, &LexiconError{Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxLexiconBytes)}
	}
	var lj lexiconJSON
	if err := DecodeStrict(data, &lj, "lexicon object"); err != nil {
		return nil, &LexiconError{Err: err}
	}
	lex := &Lexicon{Name: lj.Name.s}
	if lj.Name.bad {
		return nil, &LexiconError{Field: "name", Err: ErrInvalidUTF8}
	}
	if lj.Format.bad || lj.Format.s != "" && lj.Format.s != canonicalFormat {
		return nil, &LexiconError{Lexicon: lex.Name, Field: "format", Err: fmt.Errorf("%w: want %q or nothing", ErrInvalidValue, canonicalFormat)}
	}
	if len(lj.Rules) > MaxRules {
		return nil, &LexiconError{Lexicon: lex.Name, Field: "rules", Err: fmt.Errorf("%w: %d rules, limit %d", ErrTooLarge, len(lj.Rules), MaxRules)}
	}
	for i, raw := range lj.Rules {
		var rj ruleJSON
		if err := DecodeStrict(raw, &rj, "lexicon object"); err != nil {
			return nil, &LexiconError{Lexicon: lex.Name, Rule: ruleLabel(raw, i), Err: err}
		}
		r, err := rj.rule(lex.Name, i)
		if err != nil {
			return nil, err
		}
		lex.Rules = append(lex.Rules, r)
	}
	if err := lex.Validate(); err != nil {
		return nil, err
	}
	return lex, nil
}

// ReadLexicon reads at most MaxLexiconBytes from r and parses them with ParseLexicon.
func ReadLexicon(r io.Reader) (*Lexicon, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxLexiconBytes+1))
	if err != nil {
		return nil, fmt.Errorf("scan: reading lexicon: %w", err)
	}
	return ParseLexicon(data)
}

// DecodeStrict decodes one JSON value from data into v, refusing unknown fields and trailing
// data, and maps the decoder's errors onto ErrSyntax and ErrUnknownField (with the field name
// when encoding/json gives it). what names the value in the trailing-data error, as in "data
// after the lexicon object". It is how lexicons are read, and how files that share these
// sentinels (package scan/behaviour's rules and calendars) are read too.
func DecodeStrict(data []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return fmt.Errorf("%w: field %q: %s where %s was expected", ErrSyntax, te.Field, te.Value, te.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("%w %s", ErrUnknownField, strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the %s", ErrSyntax, what)
	}
	return nil
}

// ruleLabel names a rule that failed to decode: its id if that much can be read, else "#N".
func ruleLabel(raw json.RawMessage, i int) string {
	var probe struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.ID != "" && utf8.ValidString(probe.ID) && len(probe.ID) <= MaxNameBytes {
		return probe.ID
	}
	return fmt.Sprintf("#%d", i+1)
}

func (rj *ruleJSON) rule(lexName string, i int) (Rule, error) {
	label := fmt.Sprintf("#%d", i+1)
	if !rj.ID.bad && rj.ID.s != "" && len(rj.ID.s) <= MaxNameBytes {
		label = rj.ID.s
	}
	fail := func(field string, err error) (Rule, error) {
		return Rule{}, &LexiconError{Lexicon: lexName, Rule: label, Field: field, Err: err}
	}
	strs := func(field string, in []jstr) ([]string, error) {
		out := make([]string, 0, len(in))
		for k, j := range in {
			if j.bad {
				return nil, &LexiconError{Lexicon: lexName, Rule: label, Field: fmt.Sprintf("%s[%d]", field, k), Err: ErrInvalidUTF8}
			}
			out = append(out, j.s)
		}
		return out, nil
	}
	for _, f := range []struct {
		name string
		v    jstr
	}{{"id", rj.ID}, {"category", rj.Category}, {"severity", rj.Severity}, {"description", rj.Description}} {
		if f.v.bad {
			return fail(f.name, ErrInvalidUTF8)
		}
	}
	r := Rule{ID: rj.ID.s, Category: rj.Category.s, Description: rj.Description.s, CaseSensitive: rj.CaseSensitive, WordBoundary: rj.WordBoundary, Exact: rj.Exact}
	if rj.Severity.s == "" {
		return fail("severity", ErrMissingField)
	}
	sev, err := ParseSeverity(rj.Severity.s)
	if err != nil {
		return fail("severity", err)
	}
	r.Severity = sev
	if r.Terms, err = strs("terms", rj.Terms); err != nil {
		return Rule{}, err
	}
	if r.Exclude, err = strs("exclude", rj.Exclude); err != nil {
		return Rule{}, err
	}
	if rj.Near != nil {
		r.Near = &Near{}
		if r.Near.A, err = strs("near.a", rj.Near.A); err != nil {
			return Rule{}, err
		}
		if r.Near.B, err = strs("near.b", rj.Near.B); err != nil {
			return Rule{}, err
		}
		if rj.Near.Within == nil {
			return fail("near.within", ErrMissingField)
		}
		r.Near.Within = *rj.Near.Within
	}
	return r, nil
}

// Validate checks every rule of l against the format's constraints and limits. Compile calls
// it; it is exported for tools that edit lexicons.
func (l *Lexicon) Validate() error {
	if l == nil {
		return &LexiconError{Err: fmt.Errorf("%w: nil lexicon", ErrMissingField)}
	}
	if err := checkName(l.Name); err != nil {
		return &LexiconError{Field: "name", Err: err}
	}
	if len(l.Rules) == 0 {
		return &LexiconError{Lexicon: l.Name, Field: "rules", Err: ErrMissingField}
	}
	if len(l.Rules) > MaxRules {
		return &LexiconError{Lexicon: l.Name, Field: "rules", Err: fmt.Errorf("%w: %d rules, limit %d", ErrTooLarge, len(l.Rules), MaxRules)}
	}
	ids := make(map[string]int, len(l.Rules))
	total, totalBytes := 0, 0
	for i := range l.Rules {
		r := &l.Rules[i]
		label := r.ID
		if label == "" || !utf8.ValidString(label) || len(label) > MaxNameBytes {
			label = fmt.Sprintf("#%d", i+1)
		}
		fail := func(field string, err error) error {
			return &LexiconError{Lexicon: l.Name, Rule: label, Field: field, Err: err}
		}
		if err := checkID(r.ID); err != nil {
			return fail("id", err)
		}
		if j, dup := ids[r.ID]; dup {
			return fail("id", fmt.Errorf("%w: rules #%d and #%d", ErrDuplicateID, j+1, i+1))
		}
		ids[r.ID] = i
		if err := checkID(r.Category); err != nil {
			return fail("category", err)
		}
		if !utf8.ValidString(r.Description) {
			return fail("description", ErrInvalidUTF8)
		}
		if len(r.Description) > MaxTermBytes*4 {
			return fail("description", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(r.Description), MaxTermBytes*4))
		}
		if r.Severity < Info || r.Severity > High {
			return fail("severity", fmt.Errorf("%w: %d", ErrUnknownSeverity, uint8(r.Severity)))
		}
		if len(r.Terms) == 0 && r.Near == nil {
			return fail("terms", ErrEmptyTerms)
		}
		lists := []struct {
			name  string
			terms []string
		}{{"terms", r.Terms}, {"exclude", r.Exclude}}
		if r.Near != nil {
			if len(r.Near.A) == 0 {
				return fail("near.a", ErrEmptyTerms)
			}
			if len(r.Near.B) == 0 {
				return fail("near.b", ErrEmptyTerms)
			}
			if r.Near.Within < 0 || r.Near.Within > MaxNearWithin {
				err := ErrInvalidValue
				if r.Near.Within > MaxNearWithin {
					err = ErrTooLarge
				}
				return fail("near.within", fmt.Errorf("%w: %d, want 0 to %d characters", err, r.Near.Within, MaxNearWithin))
			}
			lists = append(lists, struct {
				name  string
				terms []string
			}{"near.a", r.Near.A}, struct {
				name  string
				terms []string
			}{"near.b", r.Near.B})
		}
		for _, list := range lists {
			seen := make(map[string]int, len(list.terms))
			for k, t := range list.terms {
				field := fmt.Sprintf("%s[%d]", list.name, k)
				if err := checkTerm(t); err != nil {
					return fail(field, err)
				}
				if j, dup := seen[t]; dup {
					return fail(field, fmt.Errorf("%w: %q is also %s[%d]", ErrDuplicateTerm, t, list.name, j))
				}
				seen[t] = k
			}
			total += len(list.terms)
			if total > MaxTerms {
				return fail(list.name, fmt.Errorf("%w: more than %d terms in the lexicon", ErrTooLarge, MaxTerms))
			}
			for _, t := range list.terms {
				totalBytes += len(t)
			}
			if totalBytes > MaxLexiconBytes {
				return fail(list.name, fmt.Errorf("%w: more than %d bytes of terms in the lexicon", ErrTooLarge, MaxLexiconBytes))
			}
		}
	}
	return nil
}

// checkName accepts a non-empty name of at most MaxNameBytes of UTF-8 with no control
// characters.
func checkName(s string) error {
	switch {
	case s == "":
		return ErrMissingField
	case !utf8.ValidString(s):
		return ErrInvalidUTF8
	case len(s) > MaxNameBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(s), MaxNameBytes)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character %U", ErrInvalidValue, r)
		}
	}
	return nil
}

// checkID accepts identifiers made of ASCII letters, digits and . _ - : / (ids and categories
// end up in alerts, file names and dashboards).
func checkID(s string) error {
	if err := checkName(s); err != nil {
		return err
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-:/", c) >= 0) {
			return fmt.Errorf("%w: %q: use ASCII letters, digits and . _ - : /", ErrInvalidValue, s)
		}
	}
	return nil
}

// checkTerm accepts a term of at most MaxTermBytes of UTF-8 that has something for a match to
// hold on to: a character normalization keeps.
func checkTerm(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("%w: empty", ErrEmptyTerm)
	case !utf8.ValidString(t):
		return ErrInvalidUTF8
	case len(t) > MaxTermBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(t), MaxTermBytes)
	}
	for _, r := range t {
		if foldRune(r) >= 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrEmptyTerm, t)
}

// canonicalJSON is the canonical form hashed into the version: fixed field order, rules sorted
// by id, term lists sorted, false and empty fields left out, no insignificant white space.
type canonicalJSON struct {
	Format string          `json:"format"`
	Name   string          `json:"name"`
	Rules  []canonicalRule `json:"rules"`
}

type canonicalRule struct {
	ID            string         `json:"id"`
	Category      string         `json:"category"`
	Severity      string         `json:"severity"`
	Description   string         `json:"description,omitempty"`
	Terms         []string       `json:"terms,omitempty"`
	Exclude       []string       `json:"exclude,omitempty"`
	Near          *canonicalNear `json:"near,omitempty"`
	CaseSensitive bool           `json:"case_sensitive,omitempty"`
	WordBoundary  bool           `json:"word_boundary,omitempty"`
	Exact         bool           `json:"exact,omitempty"`
}

type canonicalNear struct {
	A      []string `json:"a"`
	B      []string `json:"b"`
	Within int      `json:"within"`
}

// canonicalFormat names this version of the format and of the normalization in the canonical
// form, so that a change to either changes every lexicon version.
const canonicalFormat = "commseal.scan.lexicon/v1"

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// Canonical returns the canonical JSON form of a valid lexicon: the form its version hashes.
// Two lexicons that differ only in rule order, term order, white space or fields left at their
// defaults have the same canonical form.
func (l *Lexicon) Canonical() ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	c := canonicalJSON{Format: canonicalFormat, Name: l.Name}
	for _, r := range l.Rules {
		cr := canonicalRule{
			ID: r.ID, Category: r.Category, Severity: r.Severity.String(), Description: r.Description,
			Terms: sortedCopy(r.Terms), Exclude: sortedCopy(r.Exclude),
			CaseSensitive: r.CaseSensitive, WordBoundary: r.WordBoundary, Exact: r.Exact,
		}
		if r.Near != nil {
			cr.Near = &canonicalNear{A: sortedCopy(r.Near.A), B: sortedCopy(r.Near.B), Within: r.Near.Within}
		}
		c.Rules = append(c.Rules, cr)
	}
	slices.SortFunc(c.Rules, func(a, b canonicalRule) int { return strings.Compare(a.ID, b.ID) })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("scan: encoding canonical lexicon: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Version returns "sha256:" followed by the hex SHA-256 of the lexicon's canonical form. Every
// finding carries the version of the lexicon that produced it.
func (l *Lexicon) Version() (string, error) {
	c, err := l.Canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
