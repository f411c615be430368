"""Application Auto Scaling of endpoint variants on this machine, refused where AWS refuses.

moto keeps scalable targets and scaling policies; what it gets wrong is set right here. The
Application Auto Scaling API reference (Errors, ObjectNotFoundException): "For any operation that
depends on the existence of a scalable target, this exception is thrown if the scalable target with
the specified service namespace, resource ID, and scalable dimension does not exist." moto answers
DeregisterScalableTarget's missing target with a ValidationException, and records a scaling policy
for a target nobody registered ("You cannot create a scaling policy until you have registered the
resource as a scalable target", PutScalingPolicy) or a scheduled action for one ("You cannot create
a scheduled action until you have registered the resource as a scalable target", PutScheduledAction),
keeps a deregistered target's policies and scheduled actions, and takes a 201st scheduled action for
a target (the quota, not adjustable: "Scheduled actions per scalable target: 200", Quotas for
Application Auto Scaling; LimitExceededException, PutScheduledAction's errors).

`scaled` tells the local SageMaker whether a variant is a scalable target: SageMaker refuses an
update that changes such a variant's instance type ("Update endpoints that use auto scaling").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

VARIANT_COUNT = "sagemaker:variant:DesiredInstanceCount"
SCHEDULED_ACTIONS_PER_TARGET = 200


def _missing(namespace: str, resource: str, dimension: str) -> Exception:
    from .motoport import JsonRESTError

    return JsonRESTError(
        "ObjectNotFoundException",
        f"No scalable target registered for service namespace: {namespace}, resource ID: {resource},"
        f" scalable dimension: {dimension}",
    )


def _target(recorded: Any) -> tuple[str, str, str]:
    """The scalable target a recorded policy or scheduled action belongs to."""
    return (recorded.service_namespace, recorded.resource_id, recorded.scalable_dimension)


def scaled(account: str, region: str, endpoint: str, variant: str) -> bool:
    """Whether the variant's instance count is a scalable target."""
    from .motoport import applicationautoscaling_backends

    targets = applicationautoscaling_backends[account][region].targets.get(VARIANT_COUNT, {})
    return f"endpoint/{endpoint}/variant/{variant}" in targets


def install() -> Callable[[], None]:
    """Refuse calls on a target that is not registered, and a scheduled action past the quota, as AWS
    does; returns what undoes it."""
    from .motoport import ApplicationAutoscalingBackend

    deregister = ApplicationAutoscalingBackend.deregister_scalable_target
    put_policy = ApplicationAutoscalingBackend.put_scaling_policy
    put_scheduled = ApplicationAutoscalingBackend.put_scheduled_action

    def deregister_registered(backend: Any, namespace: str, r_id: str, dimension: str) -> None:
        if not backend._scalable_target_exists(r_id, dimension):
            raise _missing(namespace, r_id, dimension)
        deregister(backend, namespace, r_id, dimension)
        # "Deregistering a scalable target deletes the scaling policies and the scheduled actions that
        # are associated with it" (DeregisterScalableTarget); moto keeps both
        target = (namespace, r_id, dimension)
        for key, policy in list(backend.policies.items()):
            if _target(policy) == target:
                del backend.policies[key]
        backend.scheduled_actions = [action for action in backend.scheduled_actions if _target(action) != target]

    def put_on_registered(backend: Any, **request: Any) -> Any:
        if not backend._scalable_target_exists(request["resource_id"], request["scalable_dimension"]):
            raise _missing(request["service_namespace"], request["resource_id"], request["scalable_dimension"])
        return put_policy(backend, **request)

    def schedule_on_registered(backend: Any, **request: Any) -> None:
        namespace, r_id, dimension = (request[k] for k in ("service_namespace", "resource_id", "scalable_dimension"))
        if not backend._scalable_target_exists(r_id, dimension):
            raise _missing(namespace, r_id, dimension)
        target = [
            action.scheduled_action_name
            for action in backend.scheduled_actions
            if _target(action) == (namespace, r_id, dimension)
        ]
        if request["scheduled_action_name"] not in target and len(target) >= SCHEDULED_ACTIONS_PER_TARGET:
            from .motoport import JsonRESTError

            raise JsonRESTError(
                "LimitExceededException",
                f"The scalable target {r_id} already has {len(target)} scheduled actions, the most it may have",
            )
        put_scheduled(backend, **request)

    ApplicationAutoscalingBackend.deregister_scalable_target = deregister_registered  # type: ignore[method-assign,assignment]
    ApplicationAutoscalingBackend.put_scaling_policy = put_on_registered  # type: ignore[method-assign,assignment]
    ApplicationAutoscalingBackend.put_scheduled_action = schedule_on_registered  # type: ignore[method-assign,assignment]

    def uninstall() -> None:
        ApplicationAutoscalingBackend.deregister_scalable_target = deregister  # type: ignore[method-assign]
        ApplicationAutoscalingBackend.put_scaling_policy = put_policy  # type: ignore[method-assign]
        ApplicationAutoscalingBackend.put_scheduled_action = put_scheduled  # type: ignore[method-assign]

    return uninstall
