"""/v1/datasets: upload (CSV for text, ZIP of class folders for images), list, read, delete."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from saas.billing.selectors import plan_limits_get
from saas.common.errors import PayloadTooLarge
from saas.contract import TASKS
from saas.datasets import selectors as dataset_selectors
from saas.datasets import services as dataset_services
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, page_of
from .common import validated


class DatasetCreateIn(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    task = serializers.ChoiceField(choices=list(TASKS))
    name = serializers.CharField(max_length=200, required=False)
    text_column = serializers.CharField(max_length=200, required=False, default="text")
    label_column = serializers.CharField(max_length=200, required=False, default="label")


class DatasetOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    name = serializers.CharField()
    task = serializers.CharField()
    status = serializers.CharField()
    num_examples = serializers.IntegerField()
    classes = serializers.DictField(child=serializers.IntegerField())
    report = serializers.JSONField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "dataset"


class DatasetListView(TenantAPIView):
    """Datasets: list them, or upload a CSV (text) or ZIP of class folders (images)."""

    actions = {"GET": Action.DATASETS_READ, "POST": Action.DATASETS_WRITE}
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="datasets_list", responses=page_of(DatasetOut), parameters=PAGE_PARAMS
    )
    def get(self, request):
        return self.paginate(
            dataset_selectors.dataset_list(organization=self.organization), DatasetOut
        )

    @extend_schema(request={"multipart/form-data": DatasetCreateIn}, responses={201: DatasetOut})
    def post(self, request):
        # Refuse an oversized body before reading it (multipart overhead allowed for).
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        limit = settings.TRAINYARD_MAX_UPLOAD_BYTES
        if length > limit + 64 * 1024:
            raise PayloadTooLarge(
                f"The request is {length} bytes; the upload limit is {limit} bytes.",
                limit_bytes=limit,
            )
        data = validated(DatasetCreateIn, request.data)
        upload = data["file"]
        dataset = dataset_services.dataset_create(
            organization=self.organization,
            file=upload,
            size=upload.size,
            task=data["task"],
            name=data.get("name") or upload.name or "dataset",
            text_column=data["text_column"],
            label_column=data["label_column"],
            max_classes=plan_limits_get(organization=self.organization).max_classes,
            actor=self.actor,
        )
        return Response(DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(TenantAPIView):
    """One dataset: read it, or delete it (409 while a queued or running job uses it)."""

    actions = {"GET": Action.DATASETS_READ, "DELETE": Action.DATASETS_WRITE}

    @extend_schema(responses=DatasetOut)
    def get(self, request, dataset_id: str):
        ds = dataset_selectors.dataset_get(organization=self.organization, dataset_id=dataset_id)
        return Response(DatasetOut(ds).data)

    @extend_schema(responses={204: None})
    def delete(self, request, dataset_id: str):
        ds = dataset_selectors.dataset_get(organization=self.organization, dataset_id=dataset_id)
        dataset_services.dataset_delete(dataset=ds, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
