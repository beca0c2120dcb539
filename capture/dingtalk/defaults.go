package dingtalk

import "time"

// Defaults of Options: what a zero field means.
const (
	DefaultConnections   = 2                      // Options.Connections
	DefaultMaxInFlight   = 100                    // Options.MaxInFlight
	DefaultReconnectMin  = 3 * time.Second        // Options.ReconnectMin
	DefaultReconnectMax  = 60 * time.Second       // Options.ReconnectMax (at least ReconnectMin)
	DefaultCheckInterval = 500 * time.Millisecond // Options.CheckInterval
	DefaultAppendTimeout = 30 * time.Second       // Options.AppendTimeout
	DefaultDrainTimeout  = 10 * time.Second       // Options.DrainTimeout
)

// Defaults of MediaOptions: what a zero field means.
const (
	DefaultMediaWorkers     = 2                // MediaOptions.Workers
	DefaultMediaQPS         = 10               // MediaOptions.QPS (DingTalk allows about 20)
	DefaultMediaMaxBytes    = 512 << 20        // MediaOptions.MaxBytes
	DefaultMediaAttempts    = 3                // MediaOptions.MaxAttempts
	DefaultMediaRetryMin    = time.Second      // MediaOptions.RetryMin
	DefaultMediaRetryMax    = 60 * time.Second // MediaOptions.RetryMax (at least RetryMin)
	DefaultMediaRoundAfter  = time.Hour        // MediaOptions.RetryRoundAfter
	DefaultMediaMaxRounds   = 5                // MediaOptions.MaxRounds
	DefaultMediaHTTPTimeout = 60 * time.Second // the timeout of the default MediaOptions.HTTPClient
)

// Defaults of CallbackOptions: what a zero field means. The default MaxBody depends on the
// owner key's length; see CallbackOptions.MaxBody.
const (
	DefaultFreshWindow = 5 * time.Minute         // CallbackOptions.FreshWindow
	DefaultMaxNonces   = 100_000                 // CallbackOptions.MaxNonces
	DefaultBudget      = 2500 * time.Millisecond // CallbackOptions.Budget
)
