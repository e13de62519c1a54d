"""The console's route table, under /staff, added to hub.app's."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from hub.web.staff import admin, patients, queue, signin, slots


def staff_routes() -> list[BaseRoute]:
    """Called after hub.app registers the record_id convertor."""
    return [
        Route("/staff", queue.queue_page),
        Route("/staff/sign-in", signin.sign_in_page),
        Route("/staff/sign-in", signin.sign_in, methods=["POST"]),
        Route("/staff/sign-in/code", signin.code_page),
        Route("/staff/sign-in/code", signin.submit_code, methods=["POST"]),
        Route("/staff/enrol", signin.enrol_page),
        Route("/staff/enrol", signin.submit_enrol, methods=["POST"]),
        Route("/staff/setup/{token}", signin.setup_page),
        Route("/staff/setup/{token}", signin.submit_setup, methods=["POST"]),
        Route("/staff/sign-out", signin.sign_out_page),
        Route("/staff/sign-out", signin.sign_out, methods=["POST"]),
        Route("/staff/queue.csv", queue.queue_csv),
        Route("/staff/claim-next", queue.claim_next, methods=["POST"]),
        Route("/staff/tasks/{id:record_id}", queue.task_detail),
        Route("/staff/tasks/{id:record_id}/claim", queue.claim, methods=["POST"]),
        Route("/staff/tasks/{id:record_id}/release", queue.release, methods=["POST"]),
        Route("/staff/tasks/{id:record_id}/outcome", queue.outcome, methods=["POST"]),
        Route("/staff/tasks/{id:record_id}/cancel", queue.confirm_cancel),
        Route("/staff/patients", patients.search),
        Route("/staff/patients/{id:record_id}", patients.patient_record),
        Route("/staff/patients/{id:record_id}/stop-texts", patients.stop_texts, methods=["POST"]),
        Route("/staff/patients/{id:record_id}/send-link", patients.send_link, methods=["POST"]),
        Route("/staff/patients/{id:record_id}/new-link", patients.new_link_page),
        Route("/staff/patients/{id:record_id}/new-link", patients.send_new_link_now, methods=["POST"]),
        Route("/staff/appointments/{id:record_id}/slots", slots.appointment_slots),
        Route("/staff/appointments/{id:record_id}/slots", slots.book_slot, methods=["POST"]),
        Route("/staff/admin/staff", admin.staff_list),
        Route("/staff/admin/staff/new", admin.new_staff_page),
        Route("/staff/admin/staff/new", admin.create, methods=["POST"]),
        Route("/staff/admin/staff/{id:record_id}/disable", admin.confirm_disable),
        Route("/staff/admin/staff/{id:record_id}/disable", admin.disable, methods=["POST"]),
        Route("/staff/admin/staff/{id:record_id}/reset-authenticator", admin.reset, methods=["POST"]),
        Route("/staff/admin/staff/{id:record_id}/organisations", admin.organisations_page),
        Route("/staff/admin/staff/{id:record_id}/organisations", admin.change_organisations, methods=["POST"]),
        Route("/staff/admin/audit", admin.audit_log),
    ]
