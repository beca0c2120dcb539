package capture_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/commseal/commseal/capture"
	"github.com/stretchr/testify/require"
)

type memSink struct {
	mu   sync.Mutex
	seen map[capture.Key]uint64
	n    uint64
	fail error
}

func (s *memSink) Append(_ context.Context, m *capture.Message) (capture.Receipt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return capture.Receipt{}, s.fail
	}
	if s.seen == nil {
		s.seen = map[capture.Key]uint64{}
	}
	if i, ok := s.seen[m.Key()]; ok {
		return capture.Receipt{Index: i, Duplicate: true}, nil
	}
	s.seen[m.Key()] = s.n
	s.n++
	return capture.Receipt{Index: s.n - 1}, nil
}

func parseJSON(raw []byte) (*capture.Message, error) {
	var v struct{ ID, Text string }
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return &capture.Message{Platform: "test", Tenant: "t", ID: v.ID, Text: v.Text, Kind: capture.KindText,
		Raw: append([]byte(nil), raw...)}, nil
}

func TestImporterSkipsBadLinesAndKeepsTheRest(t *testing.T) {
	in := strings.Join([]string{
		`{"ID":"a","Text":"hello"}`,
		`{"ID":"b",`, // malformed
		``,
		`{"ID":"a","Text":"hello again"}`, // duplicate id
		`{"ID":"","Text":"no id"}`,        // invalid: empty id
		"{\"ID\":\"c\",\"Text\":\"x\"}\r", // CRLF
		`{"ID":"d","Text":"` + strings.Repeat("x", 200) + `"}`, // too long
		`{"ID":"e"}`, // no trailing newline
	}, "\n")
	im := capture.Importer{Parse: parseJSON, MaxLine: 100}
	sink := &memSink{}
	st, err := im.Import(context.Background(), strings.NewReader(in), sink)
	require.NoError(t, err)
	require.Equal(t, 7, st.Lines)
	require.Equal(t, 3, st.Stored) // a, c, e
	require.Equal(t, 1, st.Duplicates)
	require.Len(t, st.Skipped, 3)
	require.Equal(t, 2, st.Skipped[0].Line)
	require.Equal(t, 5, st.Skipped[1].Line)
	require.ErrorIs(t, st.Skipped[1], capture.ErrInvalidMessage)
	require.Equal(t, 7, st.Skipped[2].Line)
	require.ErrorIs(t, st.Skipped[2], capture.ErrLineTooLong)
	require.Contains(t, sink.seen, capture.Key{Platform: "test", Tenant: "t", ID: "e"})
}

func TestImporterStopsOnSinkError(t *testing.T) {
	boom := errors.New("disk full")
	im := capture.Importer{Parse: parseJSON}
	st, err := im.Import(context.Background(), strings.NewReader(`{"ID":"a"}`+"\n"+`{"ID":"b"}`), &memSink{fail: boom})
	require.ErrorIs(t, err, boom)
	require.Contains(t, err.Error(), "line 1")
	require.Equal(t, 0, st.Stored)
}

func TestImporterHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	im := capture.Importer{Parse: parseJSON}
	_, err := im.Import(ctx, strings.NewReader(`{"ID":"a"}`), &memSink{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestValidate(t *testing.T) {
	ok := capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m1"}
	require.NoError(t, ok.Validate())
	cases := map[string]func(m *capture.Message){
		"empty platform": func(m *capture.Message) { m.Platform = "" },
		"empty id":       func(m *capture.Message) { m.ID = "" },
		"long id":        func(m *capture.Message) { m.ID = strings.Repeat("x", capture.MaxIDLen+1) },
		"bad utf8 text":  func(m *capture.Message) { m.Text = "\xff" },
		"bad utf8 name":  func(m *capture.Message) { m.Sender.Name = "a\xc0" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := ok
			mutate(&m)
			require.ErrorIs(t, m.Validate(), capture.ErrInvalidMessage)
		})
	}
	var nilMsg *capture.Message
	require.ErrorIs(t, nilMsg.Validate(), capture.ErrInvalidMessage)
}

func ExampleImporter() {
	lines := `{"ID":"m1","Text":"buy 100 0700.HK"}
not json
{"ID":"m1","Text":"buy 100 0700.HK"}
`
	im := capture.Importer{Parse: parseJSON}
	st, err := im.Import(context.Background(), strings.NewReader(lines), &memSink{})
	fmt.Println(st.Stored, st.Duplicates, len(st.Skipped), err)
	fmt.Println(st.Skipped[0].Line)
	// Output:
	// 1 1 1 <nil>
	// 2
}
