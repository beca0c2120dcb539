// Package dingtalk captures DingTalk messages: it parses the bot message payloads that DingTalk
// pushes (Stream mode through the official SDK, or HTTP callbacks) into capture.Message values,
// keeping every raw payload byte for byte.
//
// What DingTalk lets a bot see: every message of a one-to-one chat with the bot (all types);
// group messages that @-mention the bot (text, richText and picture only); what the bot itself
// sends; and group events (members added or removed, title, owner, disband). Human-to-human chats
// are never delivered, and DingTalk has no archive API and no recall or edit event. A firm that
// routes regulated conversations through a bot by policy must therefore watch for gaps.
package dingtalk
