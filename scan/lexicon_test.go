package scan

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lexJSON builds a one-lexicon JSON document around rule objects.
func lexJSON(rules ...string) []byte {
	return []byte(`{"name":"test","rules":[` + strings.Join(rules, ",") + `]}`)
}

const okRule = `{"id":"ok","category":"c","severity":"low","terms":["fine"]}`

func TestParseLexiconErrors(t *testing.T) {
	long := strings.Repeat("x", MaxTermBytes+1)
	for _, tc := range []struct {
		name  string
		in    []byte
		err   error
		rule  string
		field string
	}{
		{"not json", []byte(`{"name":`), ErrSyntax, "", ""},
		{"trailing data", []byte(`{"name":"x","rules":[` + okRule + `]} {}`), ErrSyntax, "", ""},
		{"unknown top-level field", []byte(`{"name":"x","rulez":[]}`), ErrUnknownField, "", ""},
		{"bad format", []byte(`{"format":"v0","name":"x","rules":[` + okRule + `]}`), ErrInvalidValue, "", "format"},
		{"no name", []byte(`{"rules":[` + okRule + `]}`), ErrMissingField, "", "name"},
		{"no rules", []byte(`{"name":"x"}`), ErrMissingField, "", "rules"},
		{"name invalid utf8", []byte("{\"name\":\"\xff\",\"rules\":[" + okRule + "]}"), ErrInvalidUTF8, "", "name"},
		{"unknown rule field", lexJSON(okRule, `{"id":"r2","category":"c","severity":"low","terms":["a"],"wordboundary":true}`), ErrUnknownField, "r2", ""},
		{"wrong type", lexJSON(`{"id":"r","category":"c","severity":"low","terms":"a"}`), ErrSyntax, "r", ""},
		{"missing id", lexJSON(okRule, `{"category":"c","severity":"low","terms":["a"]}`), ErrMissingField, "#2", "id"},
		{"bad id", lexJSON(`{"id":"has space","category":"c","severity":"low","terms":["a"]}`), ErrInvalidValue, "has space", "id"},
		{"duplicate id", lexJSON(okRule, okRule), ErrDuplicateID, "ok", "id"},
		{"missing category", lexJSON(`{"id":"r","severity":"low","terms":["a"]}`), ErrMissingField, "r", "category"},
		{"missing severity", lexJSON(`{"id":"r","category":"c","terms":["a"]}`), ErrMissingField, "r", "severity"},
		{"unknown severity", lexJSON(`{"id":"r","category":"c","severity":"critical","terms":["a"]}`), ErrUnknownSeverity, "r", "severity"},
		{"no terms", lexJSON(`{"id":"r","category":"c","severity":"low"}`), ErrEmptyTerms, "r", "terms"},
		{"empty terms", lexJSON(`{"id":"r","category":"c","severity":"low","terms":[]}`), ErrEmptyTerms, "r", "terms"},
		{"empty term", lexJSON(`{"id":"r","category":"c","severity":"low","terms":["a",""]}`), ErrEmptyTerm, "r", "terms[1]"},
		{"punctuation-only term", lexJSON(`{"id":"r","category":"c","severity":"low","terms":["。。。", "a"]}`), ErrEmptyTerm, "r", "terms[0]"},
		{"duplicate term", lexJSON(`{"id":"r","category":"c","severity":"low","terms":["a","b","a"]}`), ErrDuplicateTerm, "r", "terms[2]"},
		{"term invalid utf8", lexJSON("{\"id\":\"r\",\"category\":\"c\",\"severity\":\"low\",\"terms\":[\"a\",\"\xe5\xb9\"]}"), ErrInvalidUTF8, "r", "terms[1]"},
		{"exclude invalid utf8", lexJSON("{\"id\":\"r\",\"category\":\"c\",\"severity\":\"low\",\"terms\":[\"a\"],\"exclude\":[\"\xc0\"]}"), ErrInvalidUTF8, "r", "exclude[0]"},
		{"id invalid utf8", lexJSON("{\"id\":\"\xff\",\"category\":\"c\",\"severity\":\"low\",\"terms\":[\"a\"]}"), ErrInvalidUTF8, "#1", "id"},
		{"term too long", lexJSON(`{"id":"r","category":"c","severity":"low","terms":["` + long + `"]}`), ErrTooLarge, "r", "terms[0]"},
		{"exclude empty term", lexJSON(`{"id":"r","category":"c","severity":"low","terms":["a"],"exclude":["  "]}`), ErrEmptyTerm, "r", "exclude[0]"},
		{"near without within", lexJSON(`{"id":"r","category":"c","severity":"low","near":{"a":["x"],"b":["y"]}}`), ErrMissingField, "r", "near.within"},
		{"near negative", lexJSON(`{"id":"r","category":"c","severity":"low","near":{"a":["x"],"b":["y"],"within":-1}}`), ErrInvalidValue, "r", "near.within"},
		{"near absurd", lexJSON(`{"id":"r","category":"c","severity":"low","near":{"a":["x"],"b":["y"],"within":100000}}`), ErrTooLarge, "r", "near.within"},
		{"near empty a", lexJSON(`{"id":"r","category":"c","severity":"low","near":{"a":[],"b":["y"],"within":3}}`), ErrEmptyTerms, "r", "near.a"},
		{"near empty b", lexJSON(`{"id":"r","category":"c","severity":"low","near":{"a":["x"],"within":3}}`), ErrEmptyTerms, "r", "near.b"},
		{"near bad term", lexJSON(`{"id":"r","category":"c","severity":"low","near":{"a":["x"],"b":["y","--"],"within":3}}`), ErrEmptyTerm, "r", "near.b[1]"},
		{"near invalid utf8", lexJSON("{\"id\":\"r\",\"category\":\"c\",\"severity\":\"low\",\"near\":{\"a\":[\"\xff\"],\"b\":[\"y\"],\"within\":3}}"), ErrInvalidUTF8, "r", "near.a[0]"},
		{"file too large", append([]byte(`{"name":"`), bytes.Repeat([]byte("x"), MaxLexiconBytes)...), ErrTooLarge, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lex, err := ParseLexicon(tc.in)
			require.Error(t, err)
			assert.Nil(t, lex)
			assert.ErrorIs(t, err, tc.err)
			var le *LexiconError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, tc.rule, le.Rule, "rule")
			assert.Equal(t, tc.field, le.Field, "field")
			if tc.rule != "" {
				assert.Contains(t, err.Error(), fmt.Sprintf("rule %q", tc.rule))
			}
			if tc.field != "" {
				assert.Contains(t, err.Error(), fmt.Sprintf("field %q", tc.field))
			}
			_, err = ReadLexicon(bytes.NewReader(tc.in))
			assert.ErrorIs(t, err, tc.err, "ReadLexicon agrees")
		})
	}
}

func TestValidateLimits(t *testing.T) {
	lex := &Lexicon{Name: "big"}
	for i := range MaxRules + 1 {
		lex.Rules = append(lex.Rules, Rule{ID: fmt.Sprint("r", i), Category: "c", Severity: Low, Terms: []string{"a"}})
	}
	err := lex.Validate()
	assert.ErrorIs(t, err, ErrTooLarge)
	var le *LexiconError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "rules", le.Field)

	terms := make([]string, MaxTerms+1)
	for i := range terms {
		terms[i] = fmt.Sprint("t", i)
	}
	lex = &Lexicon{Name: "many", Rules: []Rule{{ID: "r", Category: "c", Severity: Low, Terms: terms}}}
	err = lex.Validate()
	assert.ErrorIs(t, err, ErrTooLarge)
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "r", le.Rule)
	assert.Equal(t, "terms", le.Field)

	big := strings.Repeat("x", MaxTermBytes-10)
	terms = terms[:0]
	for i := 0; i <= MaxLexiconBytes/len(big); i++ {
		terms = append(terms, fmt.Sprint(i, big))
	}
	lex = &Lexicon{Name: "bytes", Rules: []Rule{{ID: "r", Category: "c", Severity: Low, Terms: terms}}}
	err = lex.Validate()
	assert.ErrorIs(t, err, ErrTooLarge)
	require.ErrorAs(t, err, &le)
	assert.Contains(t, err.Error(), "bytes of terms")

	lex = &Lexicon{Name: "sev", Rules: []Rule{{ID: "r", Category: "c", Terms: []string{"a"}}}}
	assert.ErrorIs(t, lex.Validate(), ErrUnknownSeverity)
	_, err = Compile(lex)
	assert.ErrorIs(t, err, ErrUnknownSeverity, "Compile validates")
	_, err = Compile(nil)
	assert.ErrorIs(t, err, ErrMissingField)
}

func TestVersionIsCanonical(t *testing.T) {
	a, err := ParseLexicon([]byte(`{"name":"n","rules":[
		{"id":"b","category":"c","severity":"high","terms":["y","x"],"word_boundary":true},
		{"id":"a","category":"c","severity":"low","terms":["z"],"case_sensitive":false}]}`))
	require.NoError(t, err)
	b, err := ParseLexicon([]byte(`{"rules":[{"terms":["z"],"severity":"low","category":"c","id":"a"},
		{"word_boundary":true,"terms":["x","y"],"id":"b","category":"c","severity":"high"}],"name":"n"}`))
	require.NoError(t, err)
	va, err := a.Version()
	require.NoError(t, err)
	vb, err := b.Version()
	require.NoError(t, err)
	assert.Equal(t, va, vb, "order, white space and default fields do not change the version")
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, va)

	b.Rules[0].Terms = append(b.Rules[0].Terms, "w")
	vc, err := b.Version()
	require.NoError(t, err)
	assert.NotEqual(t, va, vc, "a new term changes the version")

	// the canonical form parses back to the same version
	c, err := a.Canonical()
	require.NoError(t, err)
	back, err := ParseLexicon(c)
	require.NoError(t, err)
	vback, err := back.Version()
	require.NoError(t, err)
	assert.Equal(t, va, vback)
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{Info, Low, Medium, High} {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back Severity
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, s, back)
	}
	_, err := Severity(0).MarshalText()
	assert.ErrorIs(t, err, ErrUnknownSeverity)
	var s Severity
	assert.True(t, errors.Is(s.UnmarshalText([]byte("HIGH")), ErrUnknownSeverity))
}

// TestCompileTooManyCharacters: a lexicon whose terms use more distinct characters than there
// are symbol codes is refused by Compile with ErrTooLarge, and one character fewer compiles.
func TestCompileTooManyCharacters(t *testing.T) {
	var chars []rune
	for r := rune(0x80); r <= unicode.MaxRune && len(chars) <= maxSymbols; r++ {
		if foldRune(r) == r { // a letter or digit that folds to itself: distinct after folding
			chars = append(chars, r)
		}
	}
	require.Len(t, chars, maxSymbols+1, "Unicode has enough letters")
	lexOf := func(chars []rune) *Lexicon {
		var terms []string
		for i := 0; i < len(chars); i += 200 {
			terms = append(terms, string(chars[i:min(i+200, len(chars))]))
		}
		return &Lexicon{Name: "wide", Rules: []Rule{{ID: "r", Category: "c", Severity: Low, Terms: terms}}}
	}
	_, err := Compile(lexOf(chars))
	require.ErrorIs(t, err, ErrTooLarge)
	var le *LexiconError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "wide", le.Lexicon)
	assert.Equal(t, "rules", le.Field)
	assert.Contains(t, err.Error(), fmt.Sprintf("%d distinct characters, limit %d", maxSymbols+1, maxSymbols))

	if raceEnabled && !slow() {
		return // the automaton of 68,608 characters takes a while to build under the race detector
	}
	lex := lexOf(chars[:maxSymbols])
	s, err := Compile(lex)
	require.NoError(t, err)
	last := lex.Rules[0].Terms[len(lex.Rules[0].Terms)-1] // the rarest characters: three-byte codes
	fs := s.ScanString("x " + last)
	require.Len(t, fs, 1)
	assert.Equal(t, last, fs[0].Term)
}
