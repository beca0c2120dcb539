package dingtalk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/commseal/commseal/capture"
)

// MediaOptions configures how a Source fetches attachments (audio, video, file, picture and the
// pictures of richText messages).
//
// The message is sealed first and acknowledged once its fetch is in the Journal; the fetch runs
// afterwards (access token, then POST /v1.0/robot/messageFiles/download, then a GET of the
// temporary link), the content is stored with BlobStore.PutBlob, and the outcome is sealed as a
// capture.RecordMedia record whose About names the message: the blob's SHA-256 and size, or the
// failure and its reason. A message is never lost because its attachment failed.
//
// Retries: each fetch is tried up to MaxAttempts times with exponential backoff (RetryMin to
// RetryMax, with jitter); rate-limit answers wait at least their Retry-After and do not count as
// attempts. After MaxAttempts a failure record is sealed and the job stays in the journal: it
// is tried again after RetryRoundAfter, and at the next Run, up to MaxRounds rounds; the last
// failure record says "final" and the job is dropped.
type MediaOptions struct {
	// Disabled turns media fetching off; attachments are then only described by the message.
	Disabled bool
	// Journal keeps pending fetches across restarts; required unless Disabled. See
	// NewDirJournal.
	Journal MediaJournal
	// Blobs stores the content; default the sink given to Run, if it implements
	// capture.BlobStore.
	Blobs capture.BlobStore
	// RobotCode for the download API when the payload has none; default Options.ClientID.
	RobotCode string
	// HTTPClient for the token, download and file requests; default a client with a
	// DefaultMediaHTTPTimeout (60 s) timeout.
	HTTPClient  *http.Client
	Workers     int           // concurrent fetches; default DefaultMediaWorkers (2)
	QPS         float64       // download API calls per second; default DefaultMediaQPS (10)
	MaxBytes    int64         // largest attachment fetched; default DefaultMediaMaxBytes (512 MiB)
	MaxAttempts int           // attempts per round; default DefaultMediaAttempts (3)
	RetryMin    time.Duration // first backoff; default DefaultMediaRetryMin (1 s)
	RetryMax    time.Duration // longest backoff; default DefaultMediaRetryMax (60 s)
	// RetryRoundAfter is how long after a sealed failure the job is tried again within the same
	// Run; default DefaultMediaRoundAfter (1 h); negative: only at the next Run.
	RetryRoundAfter time.Duration
	MaxRounds       int // failure rounds before the job is dropped; default DefaultMediaMaxRounds (5)
}

func (o *MediaOptions) defaults(clientID string) {
	if o.RobotCode == "" {
		o.RobotCode = clientID
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: DefaultMediaHTTPTimeout}
	}
	if o.Workers <= 0 {
		o.Workers = DefaultMediaWorkers
	}
	if o.QPS <= 0 {
		o.QPS = DefaultMediaQPS
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMediaMaxBytes
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMediaAttempts
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultMediaRetryMin
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(DefaultMediaRetryMax, o.RetryMin)
	}
	if o.RetryRoundAfter == 0 {
		o.RetryRoundAfter = DefaultMediaRoundAfter
	}
	if o.MaxRounds <= 0 {
		o.MaxRounds = DefaultMediaMaxRounds
	}
}

type jobState struct {
	job      MediaJob
	attempts int // failed attempts in this round
}

type mediaManager struct {
	s    *Source
	o    MediaOptions
	host string

	records capture.RecordSink
	blobs   capture.BlobStore

	mu      sync.Mutex
	ctx     context.Context // the Run's context; nil when not running
	jobs    map[string]*jobState
	queue   []string
	wake    chan struct{}
	stored  int64
	failed  int64
	nextAPI time.Time // rate limiter: earliest time of the next download API call
}

func newMediaManager(s *Source, o MediaOptions) *mediaManager {
	o.defaults(s.opts.ClientID)
	return &mediaManager{s: s, o: o, host: s.opts.OpenAPIHost, jobs: map[string]*jobState{}, wake: make(chan struct{}, 1)}
}

func (m *mediaManager) counts() (pending int, stored, failed int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.jobs), m.stored, m.failed
}

// start loads the journal and starts the workers, which stop when ctx ends.
func (m *mediaManager) start(ctx context.Context, records capture.RecordSink, blobs capture.BlobStore, wg *sync.WaitGroup) error {
	m.mu.Lock()
	m.ctx, m.records, m.blobs = ctx, records, blobs
	m.jobs = map[string]*jobState{}
	m.queue = nil
	m.mu.Unlock()
	jobs, err := m.o.Journal.List(ctx)
	m.mu.Lock()
	for _, j := range jobs {
		m.jobs[j.ID] = &jobState{job: j}
		m.queue = append(m.queue, j.ID)
	}
	m.mu.Unlock()
	if len(jobs) > 0 {
		m.s.opts.Logger.Info("dingtalk: resuming pending media fetches", "jobs", len(jobs))
	}
	for range m.o.Workers {
		wg.Go(func() { m.work(ctx) })
	}
	m.poke()
	return err
}

func (m *mediaManager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// JobID derives the id of the fetch of attachment index of the message with key k.
func JobID(k capture.Identity, index int, downloadCode string) string {
	h := sha256.Sum256([]byte(k.String() + "\x00" + strconv.Itoa(index) + "\x00" + downloadCode))
	return hex.EncodeToString(h[:16])
}

// enqueue journals a fetch for every attachment of m that has a download code. It returns once
// they are durable.
func (m *mediaManager) enqueue(ctx context.Context, msg *capture.Message) error {
	var p struct {
		RobotCode string `json:"robotCode"`
	}
	_ = json.Unmarshal(msg.Raw, &p)
	robot := p.RobotCode
	if robot == "" {
		robot = m.o.RobotCode
	}
	for i, a := range msg.Attachments {
		if a.Ref == "" {
			continue
		}
		job := MediaJob{
			ID: JobID(msg.Identity(), i, a.Ref), Message: msg.Identity(), Conversation: msg.Conversation, Attachment: i,
			DownloadCode: a.Ref, RobotCode: robot, Name: a.Name, MediaType: a.MediaType, Added: m.s.opts.Now().UTC(),
		}
		m.mu.Lock()
		_, known := m.jobs[job.ID]
		m.mu.Unlock()
		if known {
			continue // a redelivery of a message whose fetch is already pending
		}
		if err := m.o.Journal.Put(ctx, job); err != nil {
			return err
		}
		m.mu.Lock()
		if _, known := m.jobs[job.ID]; !known {
			m.jobs[job.ID] = &jobState{job: job}
			m.queue = append(m.queue, job.ID)
		}
		m.mu.Unlock()
		m.poke()
	}
	return nil
}

// later puts the job back in the queue after d, unless the run has ended.
func (m *mediaManager) later(id string, d time.Duration) {
	time.AfterFunc(d, func() {
		m.mu.Lock()
		if _, ok := m.jobs[id]; ok && m.ctx != nil && m.ctx.Err() == nil {
			m.queue = append(m.queue, id)
		}
		m.mu.Unlock()
		m.poke()
	})
}

func (m *mediaManager) backoff(attempt int) time.Duration {
	d := m.o.RetryMin
	for i := 1; i < attempt && d < m.o.RetryMax; i++ {
		d *= 2
	}
	d = min(d, m.o.RetryMax)
	return d + time.Duration(mrand.Int64N(int64(d)/5+1))
}

func (m *mediaManager) work(ctx context.Context) {
	for {
		m.mu.Lock()
		var st *jobState
		if len(m.queue) > 0 {
			st = m.jobs[m.queue[0]]
			m.queue = m.queue[1:]
		}
		m.mu.Unlock()
		if st == nil {
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
				continue
			}
		}
		m.poke() // let another worker look at the rest of the queue
		if ctx.Err() != nil {
			return
		}
		m.process(ctx, st)
	}
}

// waitRate waits for the download API's rate limit.
func (m *mediaManager) waitRate(ctx context.Context) error {
	m.mu.Lock()
	now := time.Now()
	at := now
	if m.nextAPI.After(now) {
		at = m.nextAPI
	}
	m.nextAPI = at.Add(time.Duration(float64(time.Second) / m.o.QPS))
	m.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (m *mediaManager) process(ctx context.Context, st *jobState) {
	job := st.job
	log := m.s.opts.Logger.With("msg", job.Message.String(), "attachment", job.Attachment)
	data, ctype, err := m.fetch(ctx, job)
	if ctx.Err() != nil {
		return // stopping: the job stays in the journal for the next run
	}
	var sum [32]byte
	if err == nil {
		var got [32]byte
		sum = sha256.Sum256(data)
		got, err = m.blobs.PutBlob(ctx, data)
		if err == nil && got != sum {
			err = fmt.Errorf("blob store returned hash %x for content whose SHA-256 is %x", got, sum)
		}
		if err != nil {
			err = fmt.Errorf("storing the blob: %w", err)
		}
	}
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Throttled() {
			wait := max(ae.RetryAfter, m.backoff(st.attempts+1))
			log.Info("dingtalk: media download throttled", "retry_in", wait)
			m.later(job.ID, wait)
			return
		}
		st.attempts++
		if st.attempts < m.o.MaxAttempts {
			wait := m.backoff(st.attempts)
			log.Info("dingtalk: media fetch failed; retrying", "attempt", st.attempts, "err", err, "retry_in", wait)
			m.later(job.ID, wait)
			return
		}
		m.sealFailure(ctx, st, err)
		return
	}
	body, _ := json.Marshal(capture.MediaResult{
		Status: capture.MediaStored, Attachment: job.Attachment, DownloadCode: job.DownloadCode,
		Name: job.Name, MediaType: job.MediaType, ContentType: ctype,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)),
	})
	rec := m.record(job, job.ID+"/stored", body)
	if _, err := m.records.AppendRecord(ctx, rec); err != nil {
		log.Warn("dingtalk: media record could not be sealed; retrying", "err", err)
		m.later(job.ID, m.backoff(1))
		return
	}
	if err := m.o.Journal.Delete(ctx, job.ID); err != nil {
		// Sealed; after a restart the fetch repeats and its record is a duplicate.
		log.Warn("dingtalk: media journal delete failed", "err", err)
	}
	m.mu.Lock()
	delete(m.jobs, job.ID)
	m.stored++
	m.mu.Unlock()
	log.Info("dingtalk: media stored", "sha256", hex.EncodeToString(sum[:]), "size", len(data))
}

func (m *mediaManager) record(job MediaJob, id string, body []byte) *capture.Record {
	key := job.Message
	return &capture.Record{
		Kind: capture.RecordMedia, Platform: capture.PlatformDingTalk, Tenant: job.Message.Tenant, ID: id,
		Conversation: job.Conversation, About: &key, At: m.s.opts.Now().UTC(), Body: body,
	}
}

// sealFailure seals the end of a failed round and decides when the job is tried again.
func (m *mediaManager) sealFailure(ctx context.Context, st *jobState, cause error) {
	job := st.job
	round := job.Rounds + 1
	final := round >= m.o.MaxRounds
	body, _ := json.Marshal(capture.MediaResult{
		Status: capture.MediaFailed, Attachment: job.Attachment, DownloadCode: job.DownloadCode,
		Name: job.Name, MediaType: job.MediaType, Attempts: st.attempts, Round: round,
		Reason: cause.Error(), Final: final,
	})
	log := m.s.opts.Logger.With("msg", job.Message.String(), "attachment", job.Attachment)
	rec := m.record(job, job.ID+"/failed/"+strconv.Itoa(round), body)
	if _, err := m.records.AppendRecord(ctx, rec); err != nil {
		log.Warn("dingtalk: media failure record could not be sealed; retrying", "err", err)
		m.later(job.ID, m.backoff(st.attempts))
		return
	}
	m.mu.Lock()
	m.failed++
	m.mu.Unlock()
	log.Warn("dingtalk: media fetch failed; failure sealed", "round", round, "final", final, "err", cause)
	job.Rounds, job.LastError = round, cause.Error()
	st.job, st.attempts = job, 0
	if final {
		if err := m.o.Journal.Delete(ctx, job.ID); err != nil {
			log.Warn("dingtalk: media journal delete failed", "err", err)
		}
		m.mu.Lock()
		delete(m.jobs, job.ID)
		m.mu.Unlock()
		return
	}
	if err := m.o.Journal.Put(ctx, job); err != nil {
		log.Warn("dingtalk: media journal update failed", "err", err)
	}
	if m.o.RetryRoundAfter > 0 {
		m.later(job.ID, m.o.RetryRoundAfter)
	}
	// Otherwise the job waits in the journal for the next Run; it still counts as pending.
}

// fetch downloads one attachment: token, download API, then the temporary link.
func (m *mediaManager) fetch(ctx context.Context, job MediaJob) ([]byte, string, error) {
	if err := m.waitRate(ctx); err != nil {
		return nil, "", err
	}
	tok, err := m.s.tokens.Token(ctx)
	if err != nil {
		return nil, "", err
	}
	var out struct {
		DownloadURL string `json:"downloadUrl"`
	}
	err = postJSON(ctx, m.o.HTTPClient, m.host+"/v1.0/robot/messageFiles/download",
		http.Header{"X-Acs-Dingtalk-Access-Token": {tok}},
		map[string]string{"downloadCode": job.DownloadCode, "robotCode": job.RobotCode}, &out)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Unauthorized() {
			m.s.tokens.Invalidate(tok)
		}
		return nil, "", fmt.Errorf("download API: %w", err)
	}
	if out.DownloadURL == "" {
		return nil, "", fmt.Errorf("download API: %w: no downloadUrl in the answer", ErrAPI)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, out.DownloadURL, nil)
	if err != nil {
		return nil, "", fmt.Errorf("download link: %w", err)
	}
	resp, err := m.o.HTTPClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("download link: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("download link: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, m.o.MaxBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("download link: %w", err)
	}
	if int64(len(data)) > m.o.MaxBytes {
		return nil, "", fmt.Errorf("download link: attachment larger than %d bytes", m.o.MaxBytes)
	}
	return data, resp.Header.Get("Content-Type"), nil
}
