//! AgentMessage conformance suite (cases arrive with the conformance issue).
