"""The console's pages and actions, each built on :class:`~._door.Door`'s steps: its
operation's role check, its trail record, its reads in a worker thread (the view models
of :mod:`._views`), and, for an action, its change committed with its record."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any, Final

from bastion.api import role_allows
from bastion.registry import CertificateStatus

from . import _views as views
from ._door import ACTIONS, PAGES, PREFIX, Door, Refused, Visit, pretty_json
from ._http import Answer, redirect
from ._overview import Overview

SETTABLE_STATUSES: Final = (CertificateStatus.INACTIVE.value, CertificateStatus.REVOKED.value,
                            CertificateStatus.ACTIVE.value)


class Pages(Door):
    """The pages (``GET``) and actions (``POST``) of the console."""

    _overview: Overview

    # -- pages ----------------------------------------------------------------------------

    async def _overview_page(self, visit: Visit) -> Answer:
        service, operation = PAGES["overview"]
        await self._authorized(visit, service, operation, {})
        sample = await self._overview.sample()
        await self._record(visit, service, operation, {}, "allowed", None, 200)
        return self._page(visit, "overview.html", "overview", sample=sample)

    async def _things_page(self, visit: Visit) -> Answer:
        request = visit.request
        wanted = views.ThingFilter(
            prefix=request.arg("prefix")[:128], thing_type=request.arg("type")[:128],
            group=request.arg("group")[:128],
            connected=request.arg("connected") if request.arg("connected") in ("yes", "no")
            else "", page=request.page())
        connected = frozenset(client.client_id for client in self._live.connected())
        parameters = {key: value for key, value in (
            ("thingNamePrefix", wanted.prefix), ("thingTypeName", wanted.thing_type),
            ("thingGroupName", wanted.group), ("connected", wanted.connected)) if value}
        found = await self._read(visit, "things", parameters,
                                 lambda: views.things(self._services, wanted, connected))
        return self._page(visit, "things.html", "things", found=found, wanted=wanted)

    async def _thing_page(self, visit: Visit, name: str) -> Answer:
        now = self._clock.time()
        found = await self._read(visit, "thing", {"thingName": name},
                                 lambda: views.thing(self._services, name, now))
        connected = [client for client in self._live.connected() if client.client_id == name]
        return self._page(visit, "thing.html", "things", thing=found, live=connected)

    async def _certificates_page(self, visit: Visit) -> Answer:
        live = self._live.connected()
        now = self._clock.now()
        page = visit.request.page()
        found = await self._read(visit, "certificates", {},
                                 lambda: views.certificates(self._services, page, now, live))
        return self._page(visit, "certificates.html", "certificates", found=found)

    async def _certificate_page(self, visit: Visit, certificate_id: str) -> Answer:
        live = self._live.connected()
        now = self._clock.now()
        found = await self._read(
            visit, "certificate", {"certificateId": certificate_id},
            lambda: views.certificate(self._services, certificate_id, now, live))
        confirm = visit.request.arg("confirm")
        may_act = role_allows(visit.session.role, *ACTIONS["certificate-status"])
        return self._page(visit, "certificate.html", "certificates", row=found,
                          confirm=confirm if confirm in SETTABLE_STATUSES else "",
                          done=visit.request.arg("done"), may_act=may_act)

    async def _authorization_page(self, visit: Visit, certificate_id: str) -> Answer:
        """The certificate's "Test authorization" form, and its verdict once filled in."""
        request = visit.request
        client_id = request.arg("client_id")[:128]
        action = request.arg("action", "PUBLISH")
        action = action if action in views.AUTHORIZATION_ACTIONS else "PUBLISH"
        resource = request.arg("resource")[:2048]
        result = None
        if resource:
            result = await self._read(
                visit, "test-authorization",
                {"principal": certificate_id, "clientId": client_id, "actionType": action,
                 "resource": resource},
                lambda: views.authorization_test(self._services, certificate_id, client_id,
                                                 action, resource))
        return self._page(visit, "authorization.html", "certificates",
                          certificate_id=certificate_id, client_id=client_id, action=action,
                          resource=resource, result=result,
                          actions=list(views.AUTHORIZATION_ACTIONS))

    async def _set_certificate_status(self, visit: Visit, certificate_id: str) -> Answer:
        """UpdateCertificate through the same registry call as the API's: the registry's
        event drops the live sessions of a certificate that is no longer active."""
        new_status = visit.request.form.get("new_status", "")
        identity = self._services.plane.identity
        await self._change(visit, "certificate-status",
                           {"certificateId": certificate_id, "newStatus": new_status},
                           lambda: identity.update_certificate(certificate_id, new_status))
        quoted = urllib.parse.quote(certificate_id, safe="")
        return redirect(f"{PREFIX}/certificates/{quoted}?done={urllib.parse.quote(new_status)}")

    async def _run_audit(self, visit: Visit) -> Answer:
        """StartOnDemandAuditTask with every check the account has enabled."""
        audit = self._services.audit
        if audit is None:
            raise Refused(404, "The audit is turned off ([audit] enabled = false).",
                           "ResourceNotFoundException")
        service = audit.audit

        def start() -> str:
            checks = [name for name, check in
                      service.describe_account_audit_configuration().checks.items()
                      if check.enabled]
            return service.start_on_demand_audit_task(checks)

        task_id = await self._change(visit, "audit-run", {"targetCheckNames": "enabled"},
                                     start)
        return redirect(f"{PREFIX}/audit?started={urllib.parse.quote(task_id)}")

    async def _policies_page(self, visit: Visit) -> Answer:
        page = visit.request.page()
        found = await self._read(visit, "policies", {},
                                 lambda: views.policies(self._services, page))
        return self._page(visit, "policies.html", "policies", found=found)

    async def _policy_page(self, visit: Visit, name: str) -> Answer:
        policies = self._services.plane.policies
        versions = await self._read(visit, "policy", {"policyName": name},
                                    lambda: policies.list_policy_versions(name))
        return self._page(visit, "policy.html", "policies", name=name, versions=versions)

    async def _policy_version_page(self, visit: Visit, name: str, version: str) -> Answer:
        policies = self._services.plane.policies
        found = await self._read(visit, "policy-version",
                                 {"policyName": name, "policyVersionId": version},
                                 lambda: policies.get_policy_version(name, version))
        return self._page(visit, "policy_version.html", "policies", version=found,
                          document=pretty_json(found.policy_document),
                          created=visit.request.arg("created") == "1")

    async def _policy_edit_page(self, visit: Visit, name: str, *, document: str | None = None,
                                problem: str = "", status: int = 200) -> Answer:
        """A new version's form, filled with the default version's document (or what was
        sent, when the registry refused it)."""
        policies = self._services.plane.policies
        policy = await self._read(visit, "policy-edit", {"policyName": name},
                                  lambda: policies.get_policy(name))
        may_edit = role_allows(visit.session.role, *ACTIONS["policy-version-create"])
        answer = self._page(visit, "policy_edit.html", "policies", policy=policy,
                            document=document if document is not None
                            else pretty_json(policy.policy_document),
                            problem=problem, may_edit=may_edit)
        return Answer(status, answer.body)

    async def _create_policy_version(self, visit: Visit, name: str) -> Answer:
        """CreatePolicyVersion; set as default, the broker re-authorizes the live
        sessions bound to the policy (as for the API's call)."""
        form = visit.request.form
        document = form.get("document", "")
        set_as_default = form.get("set_as_default") == "on"
        policies = self._services.plane.policies
        try:
            created = await self._change(
                visit, "policy-version-create",
                {"policyName": name, "policyDocument": document,
                 "setAsDefault": set_as_default},
                lambda: policies.create_policy_version(name, document,
                                                       set_as_default=set_as_default))
        except Refused as refused:
            if refused.status != 400 and refused.error_code != "VersionsLimitExceededException":
                raise
            return await self._policy_edit_page(visit, name, document=document,
                                                problem=refused.message, status=refused.status)
        quoted = urllib.parse.quote(name, safe="")
        return redirect(f"{PREFIX}/policies/{quoted}/versions/{created.version_id}?created=1")

    async def _policy_diff_page(self, visit: Visit, name: str) -> Answer:
        request = visit.request
        old, new = request.arg("from")[:10], request.arg("to")[:10]
        found = await self._read(
            visit, "policy-diff", {"policyName": name, "from": old, "to": new},
            lambda: views.policy_diff(self._services, name, old, new))
        return self._page(visit, "policy_diff.html", "policies", name=name, diff=found)

    async def _audit_page(self, visit: Visit) -> Answer:
        page, now = visit.request.page(), self._clock.now()
        found = await self._read(visit, "audit", {},
                                 lambda: views.findings(self._services, page, now))
        enabled = self._services.audit is not None
        role = visit.session.role
        return self._page(visit, "audit.html", "audit", found=found,
                          label=views.resource_label,
                          may_run=enabled and role_allows(role, *ACTIONS["audit-run"]),
                          may_suppress=enabled and role_allows(role, *ACTIONS["audit-suppress"]),
                          may_unsuppress=enabled and role_allows(
                              role, *ACTIONS["audit-unsuppress"]),
                          started=visit.request.arg("started")[:64],
                          done=visit.request.arg("done")[:32])

    async def _suppress_form(self, visit: Visit, finding_id: str) -> Answer:
        audit = self._services.audit
        if audit is None:
            raise Refused(404, "The audit is turned off ([audit] enabled = false).",
                           "ResourceNotFoundException")
        finding = await self._read(visit, "finding", {"findingId": finding_id},
                                   lambda: audit.audit.describe_audit_finding(finding_id))
        return self._page(visit, "suppress.html", "audit", finding=finding,
                          label=views.resource_label, durations=list(views.SUPPRESSION_DAYS),
                          may_suppress=role_allows(visit.session.role,
                                                   *ACTIONS["audit-suppress"]))

    async def _suppress(self, visit: Visit) -> Answer:
        """CreateAuditSuppression for a finding's check and resource (looked up here: the
        form names the finding, not the resource)."""
        form = visit.request.form
        finding_id = form.get("finding_id", "")[:128]
        duration = form.get("duration", "")
        description = form.get("description", "")[:1000]
        if duration not in views.SUPPRESSION_DAYS:
            raise Refused(400, "Choose how long to suppress it.", "InvalidRequestException")
        if self._services.audit is None:
            raise Refused(404, "The audit is turned off ([audit] enabled = false).",
                           "ResourceNotFoundException")
        now = self._clock.now()
        await self._change(visit, "audit-suppress",
                           {"findingId": finding_id, "duration": duration,
                            "description": description},
                           lambda: views.suppress_finding(self._services, finding_id,
                                                          duration, description, now))
        return redirect(f"{PREFIX}/audit?done=suppressed")

    async def _unsuppress(self, visit: Visit) -> Answer:
        form = visit.request.form
        check_name = form.get("check_name", "")[:128]
        try:
            identifier = json.loads(form.get("resource_identifier", ""))
        except ValueError:
            identifier = None
        if not isinstance(identifier, dict):
            raise Refused(400, "The suppression's resource is malformed.",
                           "InvalidRequestException")
        audit = self._services.audit
        if audit is None:
            raise Refused(404, "The audit is turned off ([audit] enabled = false).",
                           "ResourceNotFoundException")
        await self._change(visit, "audit-unsuppress",
                           {"checkName": check_name, "resourceIdentifier": identifier},
                           lambda: audit.audit.delete_audit_suppression(check_name,
                                                                        identifier))
        return redirect(f"{PREFIX}/audit?done=unsuppressed")

    async def _detect_page(self, visit: Visit) -> Answer:
        page = visit.request.page()
        found = await self._read(visit, "detect", {},
                                 lambda: views.violations(self._services, page))
        return self._page(visit, "detect.html", "detect", found=found,
                          detect_enabled=self._services.detect is not None,
                          why=views.violation_reason, states=views.VERIFICATION_STATES,
                          may_verify=role_allows(visit.session.role,
                                                 *ACTIONS["detect-verify"]),
                          done=visit.request.arg("done")[:32])

    async def _verify_violation(self, visit: Visit) -> Answer:
        """PutVerificationStateOnViolation (a false or benign positive teaches an ML
        behavior's model, docs/detect.md)."""
        form = visit.request.form
        violation_id = form.get("violation_id", "")[:128]
        state = form.get("state", "")
        description = form.get("description", "")[:1000] or None
        if state not in views.VERIFICATION_STATES:
            raise Refused(400, "Choose a verification state.", "InvalidRequestException")
        detect = self._services.detect
        if detect is None:
            raise Refused(404, "Detect is turned off ([detect] enabled = false).",
                           "ResourceNotFoundException")
        await self._change(visit, "detect-verify",
                           {"violationId": violation_id, "verificationState": state},
                           lambda: detect.service.put_verification_state(
                               violation_id, state, description))
        return redirect(f"{PREFIX}/detect?done=verified")

    async def _threats_page(self, visit: Visit) -> Answer:
        page = visit.request.page()
        archived = visit.request.arg("archived") == "yes"
        found = await self._read(visit, "threats", {"archived": archived},
                                 lambda: views.threat_findings(self._services, page,
                                                               archived))
        role = visit.session.role
        return self._page(visit, "threats.html", "threats", found=found, archived=archived,
                          enabled=self._services.threats is not None,
                          may_archive=role_allows(role, *ACTIONS["threat-archive"]),
                          done=visit.request.arg("done")[:32])

    async def _archive_finding(self, visit: Visit, archive: bool) -> Answer:
        finding_id = visit.request.form.get("finding_id", "")[:64]
        threats = self._services.threats
        if threats is None:
            raise Refused(404, "Threat detection is turned off ([threats] enabled = "
                               "false).", "ResourceNotFoundException")
        await self._change(visit, "threat-archive" if archive else "threat-unarchive",
                           {"findingIds": [finding_id]},
                           lambda: threats.archive([finding_id], archive))
        return redirect(f"{PREFIX}/threats?done={'archived' if archive else 'unarchived'}")

    async def _baseline_page(self, visit: Visit) -> Answer:
        found = await self._read(visit, "baseline", {},
                                 lambda: views.baseline(self._services))
        return self._page(visit, "baseline.html", "baseline", rows=found)

    async def _jobs_page(self, visit: Visit) -> Answer:
        page = visit.request.page()
        found = await self._read(visit, "jobs", {}, lambda: views.jobs(self._services, page))
        return self._page(visit, "jobs.html", "jobs", found=found)

    async def _job_page(self, visit: Visit, job_id: str) -> Answer:
        page = visit.request.page()
        found = await self._read(visit, "job", {"jobId": job_id},
                                 lambda: views.job(self._services, job_id, page))
        return self._page(visit, "job.html", "jobs", job=found)

    async def _trail_page(self, visit: Visit, verification: Any) -> Answer:
        request = visit.request
        outcome = request.arg("outcome")
        wanted = views.TrailFilter(request.arg("operation")[:128],
                                   outcome if outcome in ("allowed", "denied", "error") else "",
                                   request.page())
        parameters = {key: value for key, value in (
            ("operation", wanted.operation), ("outcome", wanted.outcome)) if value}
        found = await self._read(visit, "trail", parameters,
                                 lambda: views.trail(self._services, wanted))
        may_verify = role_allows(visit.session.role, *ACTIONS["trail-verify"])
        return self._page(visit, "trail.html", "trail", found=found, wanted=wanted,
                          verification=verification, may_verify=may_verify,
                          source=views.source_of)

    async def _verify_trail(self, visit: Visit) -> Answer:
        service, operation = ACTIONS["trail-verify"]
        await self._authorized(visit, service, operation, {})
        result = await asyncio.to_thread(self._services.trail.verify)
        await self._record(visit, service, operation, {}, "allowed", None, 200)
        return await self._trail_page(visit, result)
