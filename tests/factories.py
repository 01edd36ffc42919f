import factory
from django.contrib.auth import get_user_model

from controlplane.models import Tenant


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class InstrumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "execution.Instrument"
        django_get_or_create = ("symbol",)

    symbol = factory.Sequence(lambda n: f"TEST{n}")
    venue = "CME"
    asset_class = "future"
    tick_size = "0.25"
    multiplier = "50"
    calendar = "CME_Equity"
