"""crimecast: monthly crime forecasts per Chicago community area and crime type."""

__version__ = "0.1.0"
