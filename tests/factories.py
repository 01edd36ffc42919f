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

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Read back from the database: a created row keeps the strings it was given ("0.25") where every real
        caller reads Decimals, so a test whose seeded instrument had been truncated ticked on str prices and failed
        only in some orders (the bot page's browser test after another committed-database test)."""
        instrument = super()._create(model_class, *args, **kwargs)
        instrument.refresh_from_db()
        return instrument
