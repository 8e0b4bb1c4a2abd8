"""The org's labels and the team's saved replies, and how a label shows as a chip."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html_join

from inbox.models import Label, SavedReply
from orgs.scope import OrgScopedAdmin


def label_chips(labels):
    return format_html_join(
        " ", '<span class="label-chip" style="border-color: {}">{}</span>', ((lb.color, lb.name) for lb in labels)
    )


@admin.register(Label)
class LabelAdmin(OrgScopedAdmin):
    list_display = ("name", "chip", "org")
    list_filter = ("org",)
    search_fields = ("name",)
    fields = ("org", "name", "color")

    @admin.display(description="looks like")
    def chip(self, label):
        return label_chips([label])


class SavedReplyForm(forms.ModelForm):
    """The attachment is uploaded as a file and kept in the row (bytes, name, type)."""

    upload = forms.FileField(required=False, label="Attachment", help_text="An image (JPEG, PNG) or a document")
    remove_attachment = forms.BooleanField(required=False)

    class Meta:
        model = SavedReply
        fields = ("org", "name", "body")

    def save(self, commit=True):
        reply = super().save(commit=False)
        upload = self.cleaned_data.get("upload")
        if upload:
            reply.attachment, reply.attachment_name = upload.read(), upload.name
            reply.attachment_type = upload.content_type or "application/octet-stream"
        elif self.cleaned_data.get("remove_attachment"):
            reply.attachment, reply.attachment_name, reply.attachment_type = None, "", ""
        if commit:
            reply.save()
        return reply


@admin.register(SavedReply)
class SavedReplyAdmin(OrgScopedAdmin):
    form = SavedReplyForm
    list_display = ("name", "org", "attachment_name")
    list_filter = ("org",)
    search_fields = ("name", "body")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("attachment")
