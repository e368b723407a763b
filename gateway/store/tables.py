"""Relational schema of the gateway's state (SQLAlchemy Core), shared by PostgreSQL and SQLite.

The Alembic migrations under ``gateway/store/migrations`` create exactly these tables; a test checks that
the migrated database and this metadata agree.

No table holds a codice fiscale or a name: subjects are keyed by a keyed hash of their canonical identifier
and known everywhere else by a random pseudonym. Outgoing messages (``outbox.value``) do carry the fields a
flow lets cross; they are kept only until relayed plus the flow's retention.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = ["audit_head", "audit_log", "consents", "messages", "metadata", "outbox", "outbox_queue",
           "subject_identifiers", "subjects"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

subjects = Table(
    "subjects",
    metadata,
    Column("pseudonym", String(64), primary_key=True),
    Column("lookup_hash", String(64), nullable=False, unique=True, comment="HMAC of the canonical identifier"),
    Column("subject_key", LargeBinary(32), nullable=True, comment="keys audit references; NULL once erased"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("consent_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("subject_pseudonym", String(64), ForeignKey("subjects.pseudonym"), nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("decision", String(8), nullable=False),
    Column("purposes", JSON, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("period_start", DateTime(timezone=True), nullable=True),
    Column("period_end", DateTime(timezone=True), nullable=True),
    Column("withdrawn", Boolean, nullable=False, default=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(64), nullable=False, comment="client id of the recording partner"),
    Column("consent_type", String(16), nullable=True, comment="explicit, express or opt-out"),
    Column("document", JSON, nullable=True, comment="the version as an R5-shaped record, without direct identifiers"),
    Column("record_hash", String(80), nullable=True, comment="sha256 of the canonical document"),
    Column("change_seq", BigInteger, nullable=True, index=True,
           comment="position in consent_change_head's order of commits"),
)

consent_change_head = Table(
    "consent_change_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False, comment="number given to the latest consent version"),
)

subject_identifiers = Table(
    "subject_identifiers",
    metadata,
    Column("lookup_hash", String(64), primary_key=True, comment="HMAC of one canonical identifier"),
    Column("pseudonym", String(64), ForeignKey("subjects.pseudonym"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("sender", String(32), primary_key=True),
    Column("message_id", String(128), primary_key=True),
    Column("correlation_id", String(128), nullable=False, index=True),
    Column("message_type", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason_class", String(64), nullable=True),
    Column("recipients", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("lifecycle", String(16), nullable=True, comment="accepted, rejected or completed, as the recipient reports"),
    Column("lifecycle_at", DateTime(timezone=True), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("record_id", String(64), nullable=False, unique=True),
    Column("event_type", String(32), nullable=False),
    Column("record", Text, nullable=False, comment="RFC 8785 canonical JSON of the record"),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("chain_hash", LargeBinary(32), nullable=False, comment="SHA-256(previous chain hash || leaf hash)"),
    Column("subject_ref", String(64), nullable=True, index=True, comment="keyed per-subject reference"),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("chain_hash", LargeBinary(32), nullable=False),
    Column("frontier", JSON, nullable=False, comment="hex subtree roots of the Merkle accumulator"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", String(128), nullable=False),
    Column("recipient", String(32), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("msg_key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("consent_id", String(64), nullable=True),
    Column("consent_version", Integer, nullable=True),
    Column("subject_pseudonym", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("dropped_reason", String(64), nullable=True),
    UniqueConstraint("topic", "message_id", name="uq_outbox_topic_message"),
    Index("ix_outbox_recipient", "recipient", "id"),
    # The rows sent under a consent (migration 0018): a withdrawal finds its disclosures without a scan.
    Index("ix_outbox_consent", "consent_id", postgresql_where=text("consent_id IS NOT NULL"),
          sqlite_where=text("consent_id IS NOT NULL")),
)

outbox_queue = Table(
    "outbox_queue",
    metadata,
    # The ids of the outbox rows still to deliver (migration 0019), in id order: a row is queued in the
    # transaction that writes it and leaves the queue when it is delivered or dropped, so delivering it deletes a
    # narrow row here instead of writing a new version of the whole outgoing message (and an entry in each of the
    # outbox's indexes). No foreign key, which would cost a lookup per row: only OutboxRepository.enqueue queues.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
)

# --- audit checkpoints and signing keys (migration 0002) -------------------------------------------------------

__all__ += ["audit_checkpoints", "audit_signing_keys"]

audit_signing_keys = Table(
    "audit_signing_keys",
    metadata,
    Column("key_name", String(255), primary_key=True),
    Column("key_id", String(8), primary_key=True, comment="hex C2SP signed-note key ID"),
    Column("public_key", LargeBinary(32), nullable=False, comment="raw Ed25519 public key; never the private key"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True, comment="when it stopped signing; NULL if it signs"),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False, index=True),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False, comment="C2SP signed note (tlog-checkpoint body) as published"),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Column("key_name", String(255), nullable=False, comment="the key that signed first"),
    Column("key_id", String(8), nullable=False),
    ForeignKeyConstraint(
        ["key_name", "key_id"], ["audit_signing_keys.key_name", "audit_signing_keys.key_id"],
        name="fk_audit_checkpoints_key_name_audit_signing_keys",
    ),
)

# --- statistics activity (migration 0005) ----------------------------------------------------------------------

__all__ += ["CARE_ROWS", "statistics_activity"]

CARE_ROWS = "source_key IS NOT NULL"
"""The rows the unique index on (kind, source key) holds: care rows, the only ones a re-sent record replaces."""

WEIGHT_COMMENT = "minutes of care for visits; decisions the row counts for decisions; 1 for vaccinations"
"""The comment on ``statistics_activity.weight`` (migration 0021 writes it on PostgreSQL)."""

statistics_activity = Table(
    "statistics_activity",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False, comment="YYYY-MM (Europe/Rome) of the counted event"),
    Column("kind", String(32), nullable=False, comment="visit, vaccination or decision"),
    Column("source", String(32), nullable=False, comment="partner whose message the event came from"),
    Column("quartiere", String(64), nullable=False, comment="quartieri code, or non-indicato"),
    Column("flow_id", String(64), nullable=True, comment="for decisions: the declared flow, if any"),
    Column("recipient", String(32), nullable=True, comment="for decisions: the recipient organisation"),
    Column("outcome", String(8), nullable=True, comment="for decisions: permit or deny"),
    Column("weight", Integer, nullable=False, comment=WEIGHT_COMMENT),
    Column("source_key", String(64), nullable=True,
           comment="for care: HMAC of (sender, resource type, resource id), so a re-send replaces the row"),
    Column("vaccine_group", String(32), nullable=True,
           comment="for vaccinations: influenza, covid-19, pneumococcal, zoster or other"),
    Index("ix_statistics_activity_month_kind", "month", "kind"),
    Index("ux_statistics_activity_kind_source_key", "kind", "source_key", unique=True,
          postgresql_where=text(CARE_ROWS), sqlite_where=text(CARE_ROWS)),
)
"""One row per event the statistics flows count (F6 visits and vaccinations), and one per group of alike F13
decisions of a batch, whose weight says how many decisions it counts (migration 0021): a month and coded
dimensions only. No pseudonym, message id, operator or finer time, so no row leads back to a person.
A care row carries a keyed hash of its source record (migration 0008), unique per kind, so that a record the
trust sends again replaces its row; decisions have none, and the unique index holds care rows only (0020). A
vaccination row names its vaccine group (migration 0011), the dimension F6 counts vaccinations by."""

# --- crosswalk tokens a partner can quote back (migration 0006) -----------------------------------------------

__all__ += ["crosswalk_tokens"]

crosswalk_tokens = Table(
    "crosswalk_tokens",
    metadata,
    Column("token", String(64), primary_key=True, comment="gwt_...: HMAC of (recipient, system, value)"),
    Column("recipient", String(32), nullable=False, comment="the only partner that may quote the token back"),
    Column("system", String(64), nullable=False, comment="subject, an identifier system, or a tokenised path"),
    Column("subject_pseudonym", String(64), ForeignKey("subjects.pseudonym"), nullable=False, index=True),
    Column("sealed_value", LargeBinary, nullable=True,
           comment="AES-GCM-sealed identifier the token stands for; NULL for a subject token"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# --- hashes of complete Merkle subtrees, for proofs (migration 0007) -------------------------------------------

__all__ += ["audit_merkle_nodes"]

audit_merkle_nodes = Table(
    "audit_merkle_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False,
           comment="height of the perfect subtree: 1 = two leaves; leaves stay in audit_log.leaf_hash"),
    Column("idx", BigInteger, primary_key=True, autoincrement=False,
           comment="covers audit_log indexes idx * 2^level .. (idx + 1) * 2^level - 1"),
    Column("hash", LargeBinary(32), nullable=False, comment="RFC 6962 Merkle Tree Hash of those records"),
    sqlite_with_rowid=False,
)
"""Hashes of the complete (perfect) subtrees of the audit log's Merkle tree, written by the append that
completes them, so that a proof reads O(log n) rows instead of every leaf hash. Derived data: each one is
recomputable from the leaves, and ``gateway audit verify`` recomputes and compares them."""

# --- the privacy officers' review queue (migration 0009) -------------------------------------------------------

__all__ += ["review_items"]

review_items = Table(
    "review_items",
    metadata,
    Column("audit_index", BigInteger, primary_key=True, autoincrement=False,
           comment="log index of the audit record to review"),
    Column("kind", String(32), nullable=False, comment="denial, drop-at-delivery or emergency"),
    Column("flow_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("reviewed_at", DateTime(timezone=True), nullable=True, comment="NULL while open"),
    Column("reviewed_by", String(64), nullable=True, comment="client id of the privacy officer"),
    Column("resolution", String(32), nullable=True, comment="confirmed or escalated"),
    Column("comment", Text, nullable=True, comment="the reviewing officer's note (kept here, never in the log)"),
    Index("ix_review_items_open", "reviewed_at", "audit_index"),
)
"""One row per audit record a privacy officer must look at (rule 11), written with the record; the record
itself stays the evidence, the row only says whether it was reviewed, by whom and with which resolution."""

# --- partner clients (migration 0010) --------------------------------------------------------------------------

__all__ += ["clients"]

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("secret_hash", Text, nullable=True,
           comment="scrypt hash (the secret itself is never kept); NULL for a client registered with keys"),
    Column("organisation", String(64), nullable=False),
    Column("role", String(64), nullable=False),
    Column("scopes", Text, nullable=False, comment="space-separated OAuth 2 scopes"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True), nullable=True,
           comment="NULL while enabled; its tokens, issued or not, are refused once set"),
    Column("public_jwks", Text, nullable=True,
           comment="JWK Set verifying its private_key_jwt assertions; NULL for a client with a secret"),
    CheckConstraint("(secret_hash IS NULL) <> (public_jwks IS NULL)", name="ck_clients_one_auth_method"),
)
"""The partner clients allowed to obtain tokens (``gateway clients``); seeded from the YAML clients file. Each
authenticates with a secret or with keys (migration 0013), never both."""

# --- client assertion ids (migration 0013) ----------------------------------------------------------------------

__all__ += ["client_assertion_ids"]

client_assertion_ids = Table(
    "client_assertion_ids",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("jti", String(128), primary_key=True, comment="the assertion's jti, as the client chose it"),
    Column("keep_until", DateTime(timezone=True), nullable=False,
           comment="the assertion's exp plus the leeway: after that it is refused as expired anyway"),
    Index("ix_client_assertion_ids_keep_until", "keep_until"),
)
"""The ``jti`` of every ``private_key_jwt`` assertion accepted and not yet expired: a second use is a replay,
refused by every gateway process on this store. Rows past ``keep_until`` are purged as new ones come."""

# --- console officers and sessions (migration 0012) -----------------------------------------------------------

__all__ += ["console_officers", "console_sessions"]

console_officers = Table(
    "console_officers",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", String(128), nullable=False),
    Column("organisation", String(64), nullable=False),
    Column("roles", Text, nullable=False, comment="space-separated console roles"),
    Column("password_hash", Text, nullable=False, comment="argon2id hash; the password itself is never kept"),
    Column("totp_secret", String(64), nullable=False, comment="base32 TOTP seed of the second factor"),
    Column("totp_last_step", BigInteger, nullable=True, comment="last accepted TOTP time step (no code reused)"),
    Column("failed_sign_ins", Integer, nullable=False, server_default="0"),
    Column("first_failed_at", DateTime(timezone=True), nullable=True),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True), nullable=True, comment="NULL while the account may sign in"),
)
"""Local officer accounts of the console (``gateway officers add``): password and TOTP second factor."""

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True, comment="SHA-256 of the session cookie; never the cookie"),
    Column("ref", String(32), nullable=False, unique=True, comment="the session's name in audit records"),
    Column("officer", JSON, nullable=False, comment="who signed in: subject, organisation, roles, method"),
    Column("csrf_token", String(64), nullable=False, comment="synchronizer token every console form carries"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_console_sessions_last_seen", "last_seen_at"),
)
"""Signed-in console sessions; a row is deleted at sign-out, and refused once idle or too old."""

# --- the privacy officers' overview (migration 0015) ----------------------------------------------------------

__all__ += ["audit_activity_counts", "audit_activity_cursor", "audit_integrity_checks"]

audit_integrity_checks = Table(
    "audit_integrity_checks",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("tree_size", BigInteger, nullable=False, comment="records the verification covered"),
    Column("verified", Boolean, nullable=False),
    Column("report", JSON, nullable=False, comment="the integrity status as privacy officers see it"),
)
"""The outcome of each full verification of the audit log, newest last (a few hundred kept)."""

audit_activity_counts = Table(
    "audit_activity_counts",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("flow", String(16), primary_key=True),
    Column("series", String(32), primary_key=True),
    Column("source_org", String(64), primary_key=True, comment="'' when the record names none"),
    Column("recipient_org", String(64), primary_key=True, comment="'' when the record names none"),
    Column("requesting_org", String(64), primary_key=True, comment="'' when the record names none"),
    Column("n", BigInteger, nullable=False),
)
"""The last days of the audit log counted for the officers' overview (:mod:`gateway.privacy.activity`)."""

audit_activity_cursor = Table(
    "audit_activity_cursor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("next_index", BigInteger, nullable=False, comment="first audit record not yet counted"),
    Column("window_start", String(10), nullable=False, comment="oldest day the counts keep"),
)
"""One row: up to which record ``audit_activity_counts`` counts."""
