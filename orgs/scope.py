"""The one scope of every org-owned admin: a staff user sees and changes only the rows of the orgs they
belong to (inbox.Membership), with the role the admin asks for; superusers are Kirim's operators and
see every org; a staff user with no membership sees nothing.

A new admin of an org-owned model subclasses OrgScopedAdmin and says how its rows reach their org:

    @admin.register(Delivery)
    class DeliveryAdmin(OrgScopedAdmin):
        org_path = "subscription__org"   # the lookup to the Org ("org" is the default, "pk" for Org)
        roles = MANAGERS                 # who sees it; the default is every role

and calls super() when it overrides get_queryset, get_object, get_form or get_list_filter. Everything
starts from get_queryset: lists and their counts, search, actions, autocomplete (the target's admin),
object, history and delete pages, and custom URLs that find their object with get_object. Another org's
id answers 404, exactly like a missing one (Django would redirect with a message instead). Choices of
foreign keys in forms and of relation filters offer the related rows of the same orgs only; a related
model that no org owns offers nothing to anyone but superusers. The fields a model names in its
`secret_fields` (tokens, signing secrets, key digests) are write-only: never listed, shown read-only,
searched or filtered on, whatever the URL asks. inbox/tests/test_admin_scope.py walks every
registered admin as an agent and a manager of another org, so an org-owned admin that skips this fails.
"""

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, TypeVar, cast
from weakref import WeakKeyDictionary

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.db.models.fields.related import RelatedField
from django.http import Http404, HttpRequest

from orgs.models import Membership, Org, Role

if TYPE_CHECKING:
    from django.contrib.admin.options import _DisplayT, _FieldGroups, _FieldsetSpec, _ListFilterT
    from django.utils.datastructures import _ListOrTuple
    from django.utils.functional import _StrOrPromise

M = TypeVar("M", bound=Model)

EVERY_ROLE: tuple[str, ...] = tuple(Role)
MANAGERS: tuple[str, ...] = (Role.MANAGER,)


def org_roles_of(user: AbstractBaseUser | AnonymousUser) -> dict[int, str]:
    """{org id: role} of every org `user` belongs to; empty for a user with no membership."""
    if not user.is_authenticated:  # no one, so no org
        return {}
    return dict(Membership.objects.filter(user_id=user.pk).values_list("org_id", "role"))


def org_path_of(model: type[Model], admin_site: admin.AdminSite = admin.site) -> str | None:
    """The lookup from `model` to its Org, or None for a model that no org owns (users, groups)."""
    registered = admin_site._registry.get(model)
    if isinstance(registered, OrgScopedAdmin):
        return registered.org_path
    if model is Org:
        return "pk"
    try:
        field = model._meta.get_field("org")
    except FieldDoesNotExist:
        return None
    return "org" if field.related_model is Org else None


def in_orgs_of(
    request: HttpRequest, queryset: QuerySet[M], org_path: str | None, roles: Collection[str] = EVERY_ROLE
) -> QuerySet[M]:
    """`queryset` cut to the orgs where the request's user holds one of `roles`: all of it for a
    superuser, none of it when no org owns the model."""
    if request.user.is_superuser:
        return queryset
    if org_path is None:
        return queryset.none()
    return queryset.filter(**{f"{org_path}__in": [org for org, role in org_roles(request).items() if role in roles]})


# Each request's memberships, kept while the request lives.
_org_roles_by_request: WeakKeyDictionary[HttpRequest, dict[int, str]] = WeakKeyDictionary()


def org_roles(request: HttpRequest) -> dict[int, str]:
    """The user's memberships, read once per request. Filtering on the org ids themselves rather than
    on a subquery lets PostgreSQL estimate the rows of each org and use its indexes: with a subquery,
    the message list counted by reading all of an org's messages (2.0 s against 0.02 s at a million)."""
    roles = _org_roles_by_request.get(request)
    if roles is None:
        roles = _org_roles_by_request[request] = org_roles_of(request.user)
    return roles


def secret_fields(model: type[Model]) -> set[str]:
    """Write-only for everyone, superusers included: a form may take a new value, no page shows one,
    no lookup reads one. Each model names its own, beside their definitions."""
    return set(getattr(model, "secret_fields", ()))


def touches_secret(model: type[Model], lookup: str) -> bool:
    """Whether a lookup such as `phone_number__access_token__startswith` reaches a secret field."""
    for part in lookup.split(LOOKUP_SEP):
        if part in secret_fields(model):
            return True
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if not field.is_relation or field.related_model is None:
            return False
        model = field.related_model
    return False


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A relation's filter (a plain field name in list_filter) offering the related rows of the
    admin's orgs only, instead of every row of the related table."""

    def field_choices(
        self, field: RelatedField[Any, Any], request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> "list[tuple[str, _StrOrPromise]]":
        if not isinstance(model_admin, OrgScopedAdmin):  # only OrgScopedAdmin hands this filter out
            return super().field_choices(field, request, model_admin)
        rows = model_admin.related_choices(request, field.related_model)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            rows = rows.order_by(*ordering)
        return [(row.pk, str(row)) for row in rows]


class OrgScopedAdmin(admin.ModelAdmin[M]):
    org_path = "org"
    roles = EVERY_ROLE

    def get_queryset(self, request: HttpRequest) -> QuerySet[M]:
        return in_orgs_of(request, super().get_queryset(request), self.org_path, self.roles)

    def related_choices(
        self, request: HttpRequest, model: type[Model], queryset: QuerySet[Any] | None = None
    ) -> QuerySet[Any]:
        """Rows of `model` this admin may offer in a form or a filter: those of its own orgs."""
        queryset = model._default_manager.all() if queryset is None else queryset
        return in_orgs_of(request, queryset, org_path_of(model, self.admin_site), self.roles)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> M:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:  # missing, or another org's: the same answer
            raise Http404(f"No {self.opts.verbose_name} with this id.")
        return obj

    def get_form(
        self, request: HttpRequest, obj: M | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[M]]:
        """Every model choice field of the form, declared or generated, offers this admin's orgs'
        rows only; a posted id outside them is an invalid choice."""
        form = super().get_form(request, obj, change, **kwargs)
        model_admin = self

        def __init__(self: forms.ModelForm[M], *args: Any, **kwargs: Any) -> None:
            form.__init__(self, *args, **kwargs)
            for field in self.fields.values():
                if isinstance(field, forms.ModelChoiceField) and field.queryset is not None:
                    field.queryset = model_admin.related_choices(request, field.queryset.model, field.queryset)

        return cast(type[forms.ModelForm[M]], type(form.__name__, (form,), {"__init__": __init__}))

    def get_list_filter(self, request: HttpRequest) -> "list[_ListFilterT]":
        specs = super().get_list_filter(request)
        return [self.scoped_filter(spec) for spec in specs if not touches_secret(self.model, self._filter_path(spec))]

    def get_list_display(self, request: HttpRequest) -> "list[_DisplayT[M]]":
        return [name for name in super().get_list_display(request) if not touches_secret(self.model, str(name))]

    @staticmethod
    def _filter_path(spec: "_ListFilterT") -> str:
        """The field path a list_filter entry filters on; "" for a SimpleListFilter, which names none."""
        path = spec[0] if isinstance(spec, (list, tuple)) else spec
        return path if isinstance(path, str) else ""

    def scoped_filter(self, spec: "_ListFilterT") -> "_ListFilterT":
        # Filters other than a relation's offer values of rows that get_queryset has already scoped
        # (RelatedOnlyFieldListFilter, SimpleListFilter over the queryset, plain fields).
        path: object
        filter_class: object
        if isinstance(spec, str):
            path, filter_class = spec, admin.RelatedFieldListFilter
        elif isinstance(spec, (list, tuple)):
            path, filter_class = spec
        else:
            return spec
        if (
            isinstance(path, str)
            and path
            and filter_class is admin.RelatedFieldListFilter
            and get_fields_from_path(self.model, path)[-1].is_relation
        ):
            return (path, ScopedRelatedFieldListFilter)
        return spec

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # Django allows any lookup on a model's own fields in the URL: `?access_token__startswith=E`
        # would answer yes or no about a token, so secrets are refused (a 400).
        return not touches_secret(self.model, lookup) and super().lookup_allowed(lookup, value, request)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [f for f in super().get_search_fields(request) if not touches_secret(self.model, f.lstrip("=^@"))]

    def get_fieldsets(self, request: HttpRequest, obj: M | None = None) -> "_FieldsetSpec":
        """A page shown read-only would print a secret's value: leave secret fields out of it."""
        fieldsets = super().get_fieldsets(request, obj)
        secrets = secret_fields(self.model)
        if obj is None or not secrets or self.has_change_permission(request, obj):
            return fieldsets
        return [(name, {**options, "fields": self._without(options["fields"], secrets)}) for name, options in fieldsets]

    @staticmethod
    def _without(fields: "_FieldGroups", secrets: set[str]) -> "list[str | _ListOrTuple[str]]":
        kept: list[str | _ListOrTuple[str]] = []
        for field in fields:
            if isinstance(field, (list, tuple)):
                kept.append(tuple(f for f in field if f not in secrets))
            elif field not in secrets:
                kept.append(field)
        return kept
