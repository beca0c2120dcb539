package search

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrQuery is wrapped by every error about a query's text or its parameters.
var ErrQuery = errors.New("search: bad query")

// Limits of a query's text.
const (
	MaxQueryLen = 4096 // bytes
	MaxTerms    = 64
	maxDepth    = 32
)

// Fields a term can name (field:value). A term without a field searches the full text.
const (
	FieldConversation = "conversation" // the conversation id, or a part of its title
	FieldSender       = "sender"       // the sender's id or staff id, or a part of their name
	FieldParticipant  = "participant"  // the sender or a mentioned party, as for sender
	FieldFile         = "file"         // a part of an attachment's name
	FieldType         = "type"         // the start of an attachment's media type (image, application/pdf)
	FieldKind         = "kind"         // the message kind (text, rich_text, picture, audio, file, ...)
	// Surveillance's alerts about the message (package ledger/surveil), exactly:
	FieldRule        = "rule"        // the id of a lexicon or behaviour rule it tripped
	FieldCategory    = "category"    // the category of a lexicon rule, or a behaviour rule's kind
	FieldSeverity    = "severity"    // info, low, medium, high or critical
	FieldDisposition = "disposition" // dismissed, escalated, note, assigned; open: an alert no one closed
)

var fields = []string{FieldConversation, FieldSender, FieldParticipant, FieldFile, FieldType, FieldKind,
	FieldRule, FieldCategory, FieldSeverity, FieldDisposition}

// node is a parsed query expression.
type node interface {
	// write renders the node in the query language, so that parsing it gives the node back.
	write(b *strings.Builder)
}

// term matches a value in a field ("" = the full text).
type term struct {
	field, value string
	folded       string // fold(value); for the fields that match by substring
}

type and []node
type or []node
type not struct{ x node }

func (t *term) write(b *strings.Builder) {
	if t.field != "" {
		b.WriteString(t.field)
		b.WriteByte(':')
	}
	b.WriteString(strconv.Quote(t.value))
}

func (a and) write(b *strings.Builder) { writeList(b, a, " AND ") }
func (o or) write(b *strings.Builder)  { writeList(b, o, " OR ") }
func (n not) write(b *strings.Builder) { b.WriteString("NOT "); writeParen(b, n.x) }

func writeList(b *strings.Builder, xs []node, op string) {
	for i, x := range xs {
		if i > 0 {
			b.WriteString(op)
		}
		writeParen(b, x)
	}
}

func writeParen(b *strings.Builder, x node) {
	if _, ok := x.(*term); ok {
		x.write(b)
		return
	}
	b.WriteByte('(')
	x.write(b)
	b.WriteByte(')')
}

// render returns the canonical text of a parsed query ("" for none).
func render(n node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	n.write(&b)
	return b.String()
}

// parse reads the query language:
//
//	expr    = or
//	or      = and { "OR" and }
//	and     = unary { ["AND"] unary }       (terms side by side must all match)
//	unary   = "NOT" unary | primary
//	primary = "(" expr ")" | [field ":"] ( word | "quoted phrase" )
//
// AND, OR and NOT are operators only in capitals. A quoted phrase keeps spaces and operators
// as text and takes Go escapes (\" and \\). Text folds as the scanner folds (width, case,
// Traditional to Simplified, punctuation and spaces dropped), so a phrase matches its words
// however they are spaced. A word before a colon that is not a field is text like any other.
// An empty query (only spaces) returns nil: everything matches.
func parse(q string) (node, error) {
	if len(q) > MaxQueryLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrQuery, MaxQueryLen)
	}
	if !utf8.ValidString(q) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrQuery)
	}
	p := &parser{s: q}
	p.next()
	if p.tok.kind == tokEOF {
		return nil, nil
	}
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf("unexpected %s", p.tok)
	}
	return n, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokPhrase
	tokLParen
	tokRParen
	tokAnd
	tokOr
	tokNot
	tokBad
)

type token struct {
	kind  tokKind
	field string // for a word or phrase with a field prefix
	text  string
	pos   int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of query"
	case tokLParen:
		return `"("`
	case tokRParen:
		return `")"`
	}
	return strconv.Quote(t.text)
}

type parser struct {
	s     string
	pos   int
	tok   token
	terms int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrQuery, p.tok.pos, fmt.Sprintf(format, args...))
}

// next reads the next token into p.tok.
func (p *parser) next() {
	for p.pos < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.pos:])
		if !unicode.IsSpace(r) {
			break
		}
		p.pos += n
	}
	start := p.pos
	if p.pos == len(p.s) {
		p.tok = token{kind: tokEOF, pos: start}
		return
	}
	switch p.s[p.pos] {
	case '(':
		p.pos++
		p.tok = token{kind: tokLParen, text: "(", pos: start}
		return
	case ')':
		p.pos++
		p.tok = token{kind: tokRParen, text: ")", pos: start}
		return
	case '"':
		p.tok = p.phrase("", start)
		return
	}
	end := p.pos
	for end < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[end:])
		if unicode.IsSpace(r) || r == '(' || r == ')' || r == '"' {
			break
		}
		if r == ':' && slices.Contains(fields, p.s[p.pos:end]) {
			field := p.s[p.pos:end]
			p.pos = end + 1
			if p.pos < len(p.s) && p.s[p.pos] == '"' {
				p.tok = p.phrase(field, start)
				return
			}
			p.tok = p.word(field, start)
			return
		}
		end += n
	}
	p.tok = p.word("", start)
	switch p.tok.text {
	case "AND":
		p.tok.kind = tokAnd
	case "OR":
		p.tok.kind = tokOr
	case "NOT":
		p.tok.kind = tokNot
	}
}

// word reads a bare word from p.pos.
func (p *parser) word(field string, start int) token {
	end := p.pos
	for end < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[end:])
		if unicode.IsSpace(r) || r == '(' || r == ')' || r == '"' {
			break
		}
		end += n
	}
	w := p.s[p.pos:end]
	p.pos = end
	if w == "" {
		return token{kind: tokBad, text: field + ":", pos: start}
	}
	return token{kind: tokWord, field: field, text: w, pos: start}
}

// phrase reads a quoted phrase starting at p.pos.
func (p *parser) phrase(field string, start int) token {
	i := p.pos + 1
	for i < len(p.s) {
		switch p.s[i] {
		case '\\':
			i += 2
			continue
		case '"':
			text, err := strconv.Unquote(p.s[p.pos : i+1])
			p.pos = i + 1
			if err != nil {
				return token{kind: tokBad, text: p.s[start:p.pos], pos: start}
			}
			return token{kind: tokPhrase, field: field, text: text, pos: start}
		}
		i++
	}
	p.pos = len(p.s)
	return token{kind: tokBad, text: p.s[start:], pos: start}
}

func (p *parser) expr(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d", maxDepth)
	}
	var xs or
	for {
		x, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
		if p.tok.kind != tokOr {
			break
		}
		p.next()
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	return xs, nil
}

func (p *parser) and(depth int) (node, error) {
	var xs and
	for {
		x, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
		if p.tok.kind == tokAnd {
			p.next()
			continue
		}
		if k := p.tok.kind; k == tokEOF || k == tokOr || k == tokRParen {
			break
		}
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	return xs, nil
}

func (p *parser) unary(depth int) (node, error) {
	if p.tok.kind == tokNot {
		p.next()
		if depth+1 > maxDepth {
			return nil, p.errorf("nested deeper than %d", maxDepth)
		}
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return not{x}, nil
	}
	return p.primary(depth)
}

func (p *parser) primary(depth int) (node, error) {
	switch t := p.tok; t.kind {
	case tokLParen:
		p.next()
		x, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tokRParen {
			return nil, p.errorf("expected \")\", found %s", p.tok)
		}
		p.next()
		return x, nil
	case tokWord, tokPhrase:
		p.terms++
		if p.terms > MaxTerms {
			return nil, p.errorf("more than %d terms", MaxTerms)
		}
		x, err := newTerm(t.field, t.text)
		if err != nil {
			return nil, fmt.Errorf("%w (at byte %d)", err, t.pos)
		}
		p.next()
		return x, nil
	case tokBad:
		return nil, p.errorf("malformed %q (an unclosed quote, a bad escape or a field without a value)", t.text)
	default:
		return nil, p.errorf("expected a term, found %s", t)
	}
}

// newTerm checks a term: one that folds to nothing has nothing to search for.
func newTerm(field, value string) (*term, error) {
	t := &term{field: field, value: value, folded: fold(value)}
	switch field {
	case "", FieldFile:
		if t.folded == "" {
			return nil, fmt.Errorf("%w: %q has no letters or digits to search for", ErrQuery, value)
		}
	case FieldKind, FieldType, FieldSender, FieldParticipant, FieldConversation, FieldRule, FieldCategory, FieldSeverity, FieldDisposition:
		if strings.TrimSpace(value) == "" {
			return nil, fmt.Errorf("%w: %s: needs a value", ErrQuery, field)
		}
	}
	return t, nil
}
