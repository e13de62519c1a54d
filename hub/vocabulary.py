"""The hub's closed sets of values, declared once: statuses, states, kinds, channels, outcomes and the events the
hospital reads. Code, SQL parameters and templates use these; the README's and the OpenAPI document's lists of
event kinds are generated from `EVENT_KINDS`.

Each is a StrEnum, so a member is its own database and JSON value (`HospitalStatus.BOOKED == "booked"`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class HospitalStatus(StrEnum):
    """The hospital's own status of an appointment: the PAS is the authority on it."""

    BOOKED = "booked"
    CANCELLED = "cancelled"
    ATTENDED = "attended"
    DID_NOT_ATTEND = "did_not_attend"


HOSPITAL_STATUS_LABELS: Final = {
    HospitalStatus.BOOKED: "Booked",
    HospitalStatus.CANCELLED: "Cancelled",
    HospitalStatus.ATTENDED: "Attended",
    HospitalStatus.DID_NOT_ATTEND: "Did not attend",
}


class RequestState(StrEnum):
    """What the patient has asked of an appointment (as the NHS App's Wayfinder RequestStatus)."""

    NONE = "none"
    CONFIRMED = "confirmed"
    REBOOK_REQUESTED = "rebook_requested"
    CANCEL_REQUESTED = "cancel_requested"


REQUEST_STATE_LABELS: Final = {
    RequestState.NONE: "",
    RequestState.CONFIRMED: "You confirmed you will attend",
    RequestState.REBOOK_REQUESTED: "You asked to change this appointment",
    RequestState.CANCEL_REQUESTED: "You asked to cancel this appointment",
}


class Mode(StrEnum):
    IN_PERSON = "in_person"
    TELEPHONE = "telephone"
    VIDEO = "video"


MODE_LABELS: Final = {Mode.IN_PERSON: "In person", Mode.TELEPHONE: "By telephone", Mode.VIDEO: "By video"}


class WhyNot(StrEnum):
    """Why the patient may not act on an appointment online."""

    NONE = ""  # something is allowed
    PAST = "past"
    CANCELLED = "cancelled"
    CLOSED = "closed"
    CUTOFF = "cutoff"
    PENDING = "pending"  # a cancel request is waiting for the booking centre
    LIMIT = "limit"  # the patient has used their online rebook requests
    GONE = "gone"  # the time they chose has just been taken
    MISSING = "missing"  # no such appointment of theirs


class SlotStatus(StrEnum):
    """A bookable time the hospital offers (a slot is not an appointment: an appointment may be in one)."""

    FREE = "free"
    BUSY = "busy"  # an appointment is in it
    BLOCKED = "blocked"  # not bookable (a clinic cancelled, a clinician away)
    WITHDRAWN = "withdrawn"  # the hospital took it back


class SlotMoveHow(StrEnum):
    """How an appointment came to move into another slot, or out of one (the console's slot history)."""

    PATIENT = "patient"  # the patient chose a new time
    EARLIER_OFFER = "earlier_offer"  # the patient took an earlier time they were offered
    AGENT = "agent"  # an agent booked it
    CANCELLED = "cancelled"  # the hub cancelled it (the patient or an agent): out of its slot into none


class EarlierOrder(StrEnum):
    """Who is offered a freed slot first among those asking for an earlier appointment."""

    EARLIEST = "earliest"  # the earliest current appointment
    LONGEST_WAIT = "longest_wait"  # the longest wait since booking


class OfferStatus(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    LAPSED = "lapsed"  # no answer in time
    GONE = "gone"  # someone else took the slot first


class CancelMode(StrEnum):
    REQUEST = "request"  # the booking centre confirms a patient's cancel
    IMMEDIATE = "immediate"  # a patient's cancel cancels at once


class CancelReason(StrEnum):
    NO_LONGER_NEEDED = "no_longer_needed"
    FEELING_BETTER = "feeling_better"
    TREATED_ELSEWHERE = "treated_elsewhere"
    CANNOT_ATTEND = "cannot_attend"
    OTHER = "other"


CANCEL_REASON_LABELS: Final = {
    CancelReason.NO_LONGER_NEEDED: "I no longer need this appointment",
    CancelReason.FEELING_BETTER: "I feel better",
    CancelReason.TREATED_ELSEWHERE: "I am being treated somewhere else",
    CancelReason.CANNOT_ATTEND: "I cannot come and do not want another date",
    CancelReason.OTHER: "Another reason",
}


class Channel(StrEnum):
    """How a message reaches the patient."""

    SMS = "sms"
    EMAIL = "email"
    LETTER = "letter"


CHANNEL_LABELS: Final = {Channel.SMS: "Text message", Channel.EMAIL: "Email", Channel.LETTER: "Letter"}


class ContactPreference(StrEnum):
    """The digital channel a patient prefers (post is never a preference: it is what is left)."""

    SMS = "sms"
    EMAIL = "email"


class MessageKind(StrEnum):
    """What an outbox message says. With its channel it names the Notify template (`notify.templates.<kind>_<channel>`),
    except the posted invitation, which uses the invitation's letter template."""

    SECURITY_CODE = "security_code"
    INVITATION = "invitation"
    CHANGED = "changed"
    CANCELLED = "cancelled"
    INVITATION_REMINDER = "invitation_reminder"
    INVITATION_POST = "invitation_post"
    APPOINTMENT_REMINDER = "appointment_reminder"
    NO_ANSWER = "no_answer"
    PATIENT_LINK = "patient_link"
    SMS_OPT_OUT_CONFIRMATION = "sms_opt_out_confirmation"
    SMS_OPT_IN_CONFIRMATION = "sms_opt_in_confirmation"
    EARLIER_OFFER = "earlier_offer"


# What the patient's /messages page says a message was about; the kinds left out read "About your appointments".
MESSAGE_KIND_LABELS: Final = {
    MessageKind.INVITATION: "A new appointment",
    MessageKind.INVITATION_POST: "Your appointment letter, by post",
    MessageKind.INVITATION_REMINDER: "A reminder to read your appointment letter",
    MessageKind.APPOINTMENT_REMINDER: "A reminder of your appointment",
    MessageKind.CHANGED: "A change to your appointment",
    MessageKind.CANCELLED: "A cancelled appointment",
    MessageKind.SMS_OPT_OUT_CONFIRMATION: "Texts stopped",
    MessageKind.SMS_OPT_IN_CONFIRMATION: "Texts started again",
    MessageKind.EARLIER_OFFER: "An earlier appointment you could have",
    MessageKind.PATIENT_LINK: "Your link to your appointments",
    MessageKind.NO_ANSWER: "Please ring the booking team",
}


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker, under a lease
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"  # withdrawn before it went: no longer needed
    EXPIRED = "expired"  # a security code not sent within its 150 s (the web process died): it is dead, nothing sent


class SendFailure(StrEnum):
    """Why the sender gave up on a message Notify never had: an event's `data.status`, beside the statuses of
    Notify's own delivery receipts."""

    REFUSED = "refused"  # Notify refused the request (400): not a valid number or email address, say
    NOT_SENT = "not-sent"  # Notify did not answer (5xx, timeouts) for every attempt, and does not have it


class Lane(StrEnum):
    IMMEDIATE = "immediate"  # security codes, sent by the web process at once
    BULK = "bulk"  # everything else, through the workers


class TaskKind(StrEnum):
    """A booking-centre work item."""

    REBOOK = "rebook"
    CANCEL = "cancel"
    FAILED_NOTIFICATION = "failed_notification"
    INBOUND_TEXT = "inbound_text"
    LETTER_POSTED = "letter_posted"
    CONFLICT = "conflict"  # the hospital's update disagrees with a change the hub made
    NO_POSTAL_ADDRESS = "no_postal_address"  # a letter was due and there is no address to post it to
    HL7_REFUSED = "hl7_refused"  # the PAS answered an event sent over HL7 with AE or AR


TASK_KIND_LABELS: Final = {
    TaskKind.REBOOK: "Rebook request",
    TaskKind.CANCEL: "Cancel request",
    TaskKind.FAILED_NOTIFICATION: "Message not delivered",
    TaskKind.INBOUND_TEXT: "Text from patient",
    TaskKind.LETTER_POSTED: "Letter sent by post",
    TaskKind.CONFLICT: "Hospital record disagrees",
    TaskKind.NO_POSTAL_ADDRESS: "No postal address",
    TaskKind.HL7_REFUSED: "Hospital system refused an update",
}


class TaskStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    CLOSED = "closed"


class SlaState(StrEnum):
    """A task's age against the booking centre's service level."""

    OK = "ok"
    DUE = "due"  # the last working day of the service level
    OVERDUE = "overdue"


class TaskOutcome(StrEnum):
    """How a task ended. The first four are what an agent records."""

    REBOOKED = "rebooked"
    CANCELLED = "cancelled"
    NO_ANSWER = "no_answer"
    CLOSED = "closed"
    NO_ANSWER_LETTER = "no_answer_letter"  # the last unanswered call: a letter went instead
    SUPERSEDED = "superseded"  # answered by something else (a cancellation)
    MOVED_BY_HOSPITAL = "moved_by_hospital"  # the hospital gave the appointment a new time
    CANCELLED_BY_HOSPITAL = "cancelled_by_hospital"
    CLOSED_BY_HOSPITAL = "closed_by_hospital"  # the hospital recorded the appointment as attended or not
    SETTLED = "settled"  # the hospital's next update agreed with the hub's change
    ACCEPTED_HOSPITAL = "accepted_hospital"  # an agent took the hospital's version of a conflict
    EMAILED = "emailed"  # no phone number: the agent emailed the patient to ring the booking team
    NOT_POSTED = "not_posted"  # the letter the task told of was withdrawn before it went


TASK_OUTCOME_LABELS: Final = {
    TaskOutcome.REBOOKED: "Rebooked",
    TaskOutcome.CANCELLED: "Cancelled",
    TaskOutcome.NO_ANSWER: "No answer",
    TaskOutcome.CLOSED: "Closed with a note",
    TaskOutcome.NO_ANSWER_LETTER: "No answer: letter sent",
    TaskOutcome.SUPERSEDED: "No longer needed",
    TaskOutcome.MOVED_BY_HOSPITAL: "The hospital moved the appointment",
    TaskOutcome.CANCELLED_BY_HOSPITAL: "The hospital cancelled the appointment",
    TaskOutcome.CLOSED_BY_HOSPITAL: "The appointment has taken place",
    TaskOutcome.SETTLED: "The hospital's record now agrees",
    TaskOutcome.ACCEPTED_HOSPITAL: "Hospital's version accepted",
    TaskOutcome.EMAILED: "Emailed the patient",
    TaskOutcome.NOT_POSTED: "The letter was not posted",
}
AGENT_OUTCOMES: Final = (
    TaskOutcome.REBOOKED,
    TaskOutcome.CANCELLED,
    TaskOutcome.NO_ANSWER,
    TaskOutcome.CLOSED,
    TaskOutcome.ACCEPTED_HOSPITAL,  # only on a conflict task
    TaskOutcome.EMAILED,  # only for a patient with an email address and no mobile
)


class LetterKind(StrEnum):
    APPOINTMENT_LETTER = "appointment_letter"
    CLINIC_LETTER = "clinic_letter"
    DISCHARGE_SUMMARY = "discharge_summary"


LETTER_KIND_LABELS: Final = {
    LetterKind.APPOINTMENT_LETTER: "Appointment letter",
    LetterKind.CLINIC_LETTER: "Clinic letter",
    LetterKind.DISCHARGE_SUMMARY: "Discharge summary",
}


class StaffRole(StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


class StaffSessionStage(StrEnum):
    """How far a staff sign-in has gone."""

    TOTP = "totp"  # password right, authenticator code still to come
    ENROL = "enrol"  # choosing an authenticator
    ACTIVE = "active"  # signed in


class ActorType(StrEnum):
    """Who did something, in the audit trail."""

    PATIENT = "patient"
    AGENT = "agent"  # any member of staff, agent or admin
    SYSTEM = "system"
    API_KEY = "api_key"


class RecordType(StrEnum):
    """What an audit entry is about."""

    APPOINTMENT = "appointment"
    PATIENT = "patient"
    SITE = "site"
    LETTER = "letter"
    MESSAGE = "outbox_message"
    INBOUND_MESSAGE = "inbound_message"
    TASK = "task"  # entries written before tasks were called tasks say "callback_task"
    STAFF = "staff"
    API_KEY = "api_key"
    API = "api"  # a call to the integration API
    RECORD_SERVICE = "record_service"  # the NHS App's Record Service: a batch of NHS numbers
    SLOT = "slot"
    SLOT_OFFER = "slot_offer"  # an earlier appointment offered to a patient
    AUDIT_LOG = "audit_log"  # the audit trail itself, when staff read it
    SIGN_IN = "sign_in"  # a sign-in attempt (its id: the code challenge's)


class AuditAction(StrEnum):
    """What was done, in the audit trail. Values are stored: a new action is a new member, never a renamed one."""

    # The patient
    CONFIRMED = "confirmed"
    REBOOK_REQUESTED = "rebook_requested"
    REBOOK_UPDATED = "rebook_updated"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED_BY_PATIENT = "cancelled_by_patient"
    LETTER_VIEWED = "letter_viewed"
    LETTER_SEEN = "letter_seen"  # listed on an appointment the patient opened: Seen in the NHS App
    PREFERENCES_CHANGED = "preferences_changed"
    SIGNED_IN = "signed_in"
    SIGNED_OUT = "signed_out"
    # The hub itself
    CODE_ISSUED = "code_issued"
    SIGN_IN_UNMATCHED = "sign_in_unmatched"  # details that matched no record: a decoy did a code's work, sent nothing
    ESCALATED_TO_POST = "escalated_to_post"
    NOTIFICATION_QUEUED = "notification_queued"
    NOTIFICATION_DELIVERED = "notification_delivered"
    NOTIFICATION_RETRY = "notification_retry"
    NOTIFICATION_FAILED = "notification_failed"
    NOTIFICATION_CANCELLED = "notification_cancelled"
    INBOUND_MESSAGE_RECEIVED = "inbound_message_received"
    PATIENT_SMS_OPTED_OUT = "patient_sms_opted_out"
    PATIENT_SMS_OPTED_IN = "patient_sms_opted_in"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    # The hospital feed
    SITE_CREATED = "site_created"
    SITE_UPDATED = "site_updated"
    PATIENT_CREATED = "patient_created"
    PATIENT_UPDATED = "patient_updated"
    APPOINTMENT_CREATED = "appointment_created"
    APPOINTMENT_UPDATED = "appointment_updated"
    LETTER_CREATED = "letter_created"
    LETTER_UPDATED = "letter_updated"
    # Calls to the integration API that changed nothing
    PUT_SITE_REJECTED = "put_site_rejected"
    PUT_SITE_UNCHANGED = "put_site_unchanged"
    PUT_PATIENT_REJECTED = "put_patient_rejected"
    PUT_PATIENT_UNCHANGED = "put_patient_unchanged"
    PUT_APPOINTMENT_REJECTED = "put_appointment_rejected"
    PUT_APPOINTMENT_UNCHANGED = "put_appointment_unchanged"
    PUT_LETTER_REJECTED = "put_letter_rejected"
    PUT_LETTER_UNCHANGED = "put_letter_unchanged"
    GET_EVENTS_REJECTED = "get_events_rejected"
    EVENTS_READ = "events_read"
    # Staff accounts
    STAFF_CREATED = "staff_created"
    STAFF_PASSWORD_SET = "staff_password_set"
    STAFF_PASSWORD_WRONG = "staff_password_wrong"
    STAFF_CODE_WRONG = "staff_code_wrong"
    STAFF_LOCKED = "staff_locked"
    STAFF_SIGNED_IN = "staff_signed_in"
    STAFF_ENROLLED = "staff_enrolled"
    STAFF_DISABLED = "staff_disabled"
    STAFF_TOTP_RESET = "staff_totp_reset"
    STAFF_ORGANISATIONS_CHANGED = "staff_organisations_changed"
    # Staff reads of patient data (who saw what): search terms only as a keyed hash
    PATIENTS_SEARCHED = "patients_searched"
    PATIENT_RECORD_VIEWED = "patient_record_viewed"
    TASK_VIEWED = "task_viewed"
    QUEUE_EXPORTED = "queue_exported"
    AUDIT_LOG_VIEWED = "audit_log_viewed"
    # Agents
    TASK_CLAIMED = "task_claimed"
    TASK_RELEASED = "task_released"
    TASK_REBOOKED = "task_rebooked"
    TASK_CANCELLED = "task_cancelled"
    TASK_NO_ANSWER = "task_no_answer"
    TASK_CLOSED = "task_closed"
    CONFLICT_ACCEPTED = "conflict_accepted"  # an agent took the hospital's version
    TASK_EMAILED = "task_emailed"  # the patient has no phone number: the agent emailed them
    # The lifecycle
    APPOINTMENT_CONFLICT_HELD = "appointment_conflict_held"  # a hospital update held back: it disagrees
    APPOINTMENT_CONFLICT_SETTLED = "appointment_conflict_settled"
    REQUEST_CLOSED = "request_closed"  # the booking centre closed a patient's request without a change
    LETTER_NOT_POSTED = "letter_not_posted"  # no postal address, or a posted copy withdrawn before it went
    PATIENT_OPT_OUT_SET = "patient_opt_out_set"  # the hospital set texts / emails / paper
    PATIENT_MERGED = "patient_merged"  # the hospital merged two records (HL7 ADT^A40)
    HL7_REFUSED = "hl7_refused"  # the PAS answered an event sent over HL7 with AE or AR: a task for the booking centre
    SMS_OPTED_OUT = "sms_opted_out"
    LINK_RESENT = "link_resent"
    PATIENT_LINK_ROTATED = "patient_link_rotated"  # the patient's stable link replaced; earlier links stop working
    # The NHS App
    NHS_APP_EXCLUSION_CHANGED = "nhs_app_exclusion_changed"
    RECORD_SERVICE_SENT = "record_service_sent"
    RECORD_SERVICE_FAILED = "record_service_failed"
    RECORD_SERVICE_RESEND = "record_service_resend"
    # Slots
    SLOT_CREATED = "slot_created"
    SLOT_UPDATED = "slot_updated"
    SLOT_WITHDRAWN = "slot_withdrawn"
    PUT_SLOT_REJECTED = "put_slot_rejected"
    PUT_SLOT_UNCHANGED = "put_slot_unchanged"
    DELETE_SLOT_REJECTED = "delete_slot_rejected"
    DELETE_SLOT_UNCHANGED = "delete_slot_unchanged"
    RESCHEDULED_BY_PATIENT = "rescheduled_by_patient"
    SLOT_BOOKED_BY_AGENT = "slot_booked_by_agent"
    EARLIER_REQUESTED = "earlier_requested"
    EARLIER_STOPPED = "earlier_stopped"
    EARLIER_OFFERED = "earlier_offered"
    EARLIER_ACCEPTED = "earlier_accepted"
    EARLIER_DECLINED = "earlier_declined"
    EARLIER_LAPSED = "earlier_lapsed"
    EARLIER_ENDED = "earlier_ended"  # its appointment can no longer take it (cancelled, moved, a cancel asked for)


# The integration API's calls (as its handlers name them), audited when refused or when they changed nothing.
API_CALL_REJECTED: Final = {
    "put_site": AuditAction.PUT_SITE_REJECTED,
    "put_patient": AuditAction.PUT_PATIENT_REJECTED,
    "put_appointment": AuditAction.PUT_APPOINTMENT_REJECTED,
    "put_letter": AuditAction.PUT_LETTER_REJECTED,
    "get_events": AuditAction.GET_EVENTS_REJECTED,
    "put_slot": AuditAction.PUT_SLOT_REJECTED,
    "delete_slot": AuditAction.DELETE_SLOT_REJECTED,
}
API_CALL_UNCHANGED: Final = {
    "put_site": AuditAction.PUT_SITE_UNCHANGED,
    "put_patient": AuditAction.PUT_PATIENT_UNCHANGED,
    "put_appointment": AuditAction.PUT_APPOINTMENT_UNCHANGED,
    "put_letter": AuditAction.PUT_LETTER_UNCHANGED,
    "put_slot": AuditAction.PUT_SLOT_UNCHANGED,
    "delete_slot": AuditAction.DELETE_SLOT_UNCHANGED,
}


class EventKind(StrEnum):
    """What the hospital's system reads back through GET /api/v1/events. The values are a published interface:
    the booking centre's outcomes keep their first name, `callback.*`, because hospitals' systems match on it."""

    APPOINTMENT_CONFIRMED = "appointment.confirmed"
    APPOINTMENT_REBOOK_REQUESTED = "appointment.rebook_requested"
    APPOINTMENT_REBOOK_UPDATED = "appointment.rebook_updated"
    APPOINTMENT_CANCEL_REQUESTED = "appointment.cancel_requested"
    APPOINTMENT_CANCELLED_BY_PATIENT = "appointment.cancelled_by_patient"
    LETTER_VIEWED = "letter.viewed"
    PATIENT_PREFERENCES_CHANGED = "patient.preferences_changed"
    PATIENT_SMS_OPTED_OUT = "patient.sms_opted_out"
    PATIENT_SMS_OPTED_IN = "patient.sms_opted_in"
    PATIENT_MESSAGE_RECEIVED = "patient.message_received"
    TASK_REBOOKED = "callback.rebooked"
    TASK_CANCELLED = "callback.cancelled"
    TASK_NO_ANSWER = "callback.no_answer"
    TASK_CLOSED = "callback.closed"
    LETTER_ESCALATED_TO_POST = "letter.escalated_to_post"
    NOTIFICATION_FAILED_OVER = "notification.failed_over"
    NOTIFICATION_FAILED = "notification.failed"
    APPOINTMENT_CONFLICT = "appointment.conflict"
    APPOINTMENT_CONFLICT_RESOLVED = "appointment.conflict_resolved"
    LETTER_NOT_POSTED = "letter.not_posted"
    PATIENT_EMAILS_OPTED_OUT = "patient.emails_opted_out"
    PATIENT_EMAILS_OPTED_IN = "patient.emails_opted_in"
    APPOINTMENT_RESCHEDULED_BY_PATIENT = "appointment.rescheduled_by_patient"
    APPOINTMENT_EARLIER_REQUESTED = "appointment.earlier_requested"
    APPOINTMENT_EARLIER_OFFERED = "appointment.earlier_offered"
    PATIENT_MERGED = "patient.merged"


# Who causes each event, and what it means: the README's and the OpenAPI document's lists come from here.
EVENT_KINDS: Final[dict[EventKind, tuple[str, str]]] = {
    EventKind.APPOINTMENT_CONFIRMED: ("patient", "The patient confirmed they will attend."),
    EventKind.APPOINTMENT_REBOOK_REQUESTED: (
        "patient",
        "The patient asked to change the appointment; `data` has `reason` and `preferred_times`.",
    ),
    EventKind.APPOINTMENT_REBOOK_UPDATED: (
        "patient",
        "The patient changed an open request to rebook; `data` has `reason` and `preferred_times`.",
    ),
    EventKind.APPOINTMENT_CANCEL_REQUESTED: (
        "patient",
        "The patient asked to cancel; `data` has `reason` and `details`. The booking centre confirms it.",
    ),
    EventKind.APPOINTMENT_CANCELLED_BY_PATIENT: (
        "patient",
        "The patient cancelled (immediate cancel mode); `data` has `reason` and `details`.",
    ),
    EventKind.LETTER_VIEWED: ("patient", "The patient opened a letter for the first time."),
    EventKind.PATIENT_PREFERENCES_CHANGED: ("patient", "The patient changed how we contact them."),
    EventKind.PATIENT_SMS_OPTED_OUT: (
        "patient",
        "Texts to the patient stopped: they texted STOP, or (`data.by` = `booking_centre`) an agent stopped them.",
    ),
    EventKind.PATIENT_SMS_OPTED_IN: ("patient", "The patient texted START: texts resume."),
    EventKind.PATIENT_MESSAGE_RECEIVED: ("patient", "The patient sent a text; the booking centre has a task."),
    EventKind.TASK_REBOOKED: ("booking centre", "An agent moved the appointment; `data` has the new `start`."),
    EventKind.TASK_CANCELLED: ("booking centre", "An agent cancelled the appointment."),
    EventKind.TASK_NO_ANSWER: ("booking centre", "An agent called and nobody answered."),
    EventKind.TASK_CLOSED: (
        "booking centre",
        "An agent closed the task with a note (`data.note`), or by emailing a patient with no phone number to ring"
        " the booking team (`data.message_id`).",
    ),
    EventKind.LETTER_ESCALATED_TO_POST: (
        "hub",
        "The invitation's letter was unread after 72 hours: it was posted (`data.message_id`). Withdrawn before it"
        " went, a `letter.not_posted` with the same `data.message_id` follows.",
    ),
    EventKind.NOTIFICATION_FAILED_OVER: (
        "hub",
        "A message failed for good on one channel and was sent on the next (`data.from`, `data.to`). `data.status`:"
        " Notify's (`permanent-failure`), or `refused` (Notify refused it as sent: not a valid number or address).",
    ),
    EventKind.NOTIFICATION_FAILED: (
        "hub",
        "A message failed for good and goes no other way (`data.channel`). `data.status`: Notify's, `refused`, or"
        " `not-sent` (Notify never had it, after every attempt). The booking centre has a task, unless it was a"
        " security code or is no longer true (its appointment cancelled since).",
    ),
    EventKind.APPOINTMENT_CONFLICT: (
        "hub",
        "Your update disagrees with a change the hub made and told you of (`data.hub_change`: `cancelled` or"
        " `rebooked`; `data.hub` and `data.hospital` the two versions). The patient keeps seeing the hub's version"
        " until an update reflects it or sends `acknowledged_event` (the hub's event id); the booking centre has a"
        " task.",
    ),
    EventKind.APPOINTMENT_CONFLICT_RESOLVED: (
        "booking centre",
        "An agent accepted your version of a conflict (`data.resolution` = `hospital`): the patient now sees it.",
    ),
    EventKind.LETTER_NOT_POSTED: (
        "hub",
        "A letter was due (`data.kind`) but did not go: the patient has no valid postal address (`data.reason` ="
        " `no_postal_address`; the booking centre has a task), or the posted copy a `letter.escalated_to_post` told"
        " of (`data.message_id`) was withdrawn before it went (`data.reason`: `letter_opened`, `cancel_requested`,"
        " `appointment_cancelled`, `appointment_passed`, ...) or Notify could not deliver it (`not_delivered`).",
    ),
    EventKind.PATIENT_EMAILS_OPTED_OUT: ("hospital", "Emails to the patient stopped (`data.by` = `hospital`)."),
    EventKind.PATIENT_EMAILS_OPTED_IN: ("hospital", "Emails to the patient resume (`data.by` = `hospital`)."),
    EventKind.APPOINTMENT_RESCHEDULED_BY_PATIENT: (
        "patient",
        "The patient moved the appointment into a free slot themselves (`data.start`, `data.previous_start`,"
        " `data.slot_ref` the new slot, `data.previous_slot_ref` the one freed, empty when it was in none;"
        " `data.how`: `patient` or `earlier_offer`). Book the new slot and free the old one.",
    ),
    EventKind.APPOINTMENT_EARLIER_REQUESTED: (
        "patient",
        "The patient asked (`data.wanted` true) or stopped asking (false) to be offered an earlier appointment.",
    ),
    EventKind.APPOINTMENT_EARLIER_OFFERED: (
        "hub",
        "A freed slot (`data.slot_ref`) was offered to the patient as an earlier appointment, until"
        " `data.expires_at`; `appointment.rescheduled_by_patient` follows if they take it.",
    ),
    EventKind.PATIENT_MERGED: (
        "hospital",
        "You merged two records (HL7 ADT^A40): the event's patient now holds the appointments, letters, messages and"
        " tasks of `data.merged_mrn`.",
    ),
}


class ScheduledKind(StrEnum):
    """Steps of the unread-letter escalation; pre-appointment reminders are `reminder_<days>d`."""

    ESCALATION_REMINDER_1 = "escalation_reminder_1"
    ESCALATION_REMINDER_2 = "escalation_reminder_2"
    ESCALATION_POST = "escalation_post"


ESCALATION_STEPS: Final = (
    ScheduledKind.ESCALATION_REMINDER_1,
    ScheduledKind.ESCALATION_REMINDER_2,
    ScheduledKind.ESCALATION_POST,
)
# Each chain of scheduled notices shares a prefix: a later step due too supersedes an earlier one.
ESCALATION_PREFIX: Final = "escalation_"
REMINDER_PREFIX: Final = "reminder_"


def reminder_kind(days: int) -> str:
    """The scheduled notice of a reminder `days` before the appointment."""
    return f"{REMINDER_PREFIX}{days}d"


def reminder_days(kind: str) -> int:
    """How many days before the appointment a reminder's scheduled notice is due (`reminder_kind` backwards)."""
    return int(kind.removeprefix(REMINDER_PREFIX).removesuffix("d"))


def event_kinds_markdown() -> str:
    """README's events table."""
    rows = ["| Event kind | From | What it means |", "| --- | --- | --- |"]
    rows += [f"| `{kind}` | {source} | {text} |" for kind, (source, text) in EVENT_KINDS.items()]
    return "\n".join(rows)


# The NHS App's Wayfinder (the Patient Care Aggregator's producer API standard, FHIR R4). The values are the
# standard's codes, sent as they are.
class FhirAppointmentStatus(StrEnum):
    """Appointment.status from the hospital's status."""

    BOOKED = "booked"
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"
    NOSHOW = "noshow"


class WayfinderRequestStatus(StrEnum):
    """Extension-Appointment-RequestStatus: what the patient asked of an appointment the hospital has not yet acted
    on ("Pending Change" is for a change other than a new time, which the hub does not offer)."""

    PENDING_CHANGE = "Pending Change"
    PENDING_RESCHEDULE = "Pending Reschedule"
    PENDING_CANCELLATION = "Pending Cancellation"
    CONFIRMED_ATTENDANCE = "Confirmed Attendance"


class ConsultationMedium(StrEnum):
    """Extension-Consultation-Medium. The standard (v3.12+) deprecated VIRTUAL: video and telephone are named."""

    FACE_TO_FACE = "FACE_TO_FACE"
    VIDEO_CONSULTATION = "VIDEO_CONSULTATION"
    TELEPHONE = "TELEPHONE"


class ReadReceipt(StrEnum):
    """Extension-Document-ReadReceipt: Seen once the patient opened the appointment that lists the letter, Read once
    they opened the letter."""

    UNREAD = "Unread"
    SEEN = "Seen"
    READ = "Read"


class RecordResource(StrEnum):
    """The Record Service keeps one list of NHS numbers per resource type, each under its own client id."""

    APPOINTMENTS = "appointments"
    DOCUMENTS = "documents"


# Every enum above, by its class name, for templates: they compare with members (`RequestState.CANCELLED`), never
# with bare strings.
TEMPLATE_ENUMS: dict[str, type[StrEnum]] = {
    name: value
    for name, value in list(globals().items())
    if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum
}
