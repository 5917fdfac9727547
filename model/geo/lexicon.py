"""Real languages' sign words by country: what a local road sign or shop front would say.

Shared by the world renderer (``world/``, which paints them) and the text cue (``model/text/``, which reads them
back as evidence of the country), so both sides speak of one table. The words are ordinary vocabulary of each
language ("centre", "stop", "hotel"), the kind of knowledge a GeoGuessr player uses.
"""
from __future__ import annotations

# Main sign language of each country (first = the one on signs); others fall back on geodata's CLDR list.
COUNTRY_LANGUAGE: dict[str, str] = {
    "US": "en_US", "CA": "en", "GB": "en", "IE": "ga", "IM": "en", "JE": "en", "AU": "en", "NZ": "en",
    "GU": "en_US", "MP": "en_US", "AS": "en_US", "PR": "es", "DE": "de", "AT": "de", "CH": "de", "LI": "de",
    "LU": "fr", "FR": "fr", "MC": "fr", "RE": "fr", "BE": "nl", "NL": "nl", "IT": "it", "SM": "it",
    "ES": "es", "AD": "ca", "GI": "en", "PT": "pt", "BR": "pt_BR", "MX": "es_MX", "DK": "da", "FO": "da",
    "GL": "da", "NO": "nb", "SE": "sv", "FI": "fi", "IS": "is", "EE": "et", "LV": "lv", "LT": "lt",
    "PL": "pl", "CZ": "cs", "SK": "sk", "HU": "hu", "RO": "ro", "SI": "sl", "HR": "hr", "ME": "hr",
    "AL": "sq", "MT": "mt", "TR": "tr", "GR": "el", "BG": "bg", "RS": "sr", "MK": "mk", "RU": "ru",
    "UA": "uk", "KZ": "kk", "KG": "ky", "MN": "mn", "JP": "ja", "KR": "ko", "TW": "zh_Hant", "HK": "zh_Hant",
    "MO": "zh_Hant", "TH": "th", "LA": "lo", "KH": "km", "MY": "ms", "SG": "en", "ID": "id", "PH": "en",
    "IN": "hi", "BD": "bn", "LK": "si", "BT": "dz", "IL": "he", "PS": "ar", "JO": "ar", "LB": "ar",
    "AE": "ar", "QA": "ar", "OM": "ar", "TN": "ar", "ZA": "af", "BW": "en", "LS": "en", "SZ": "en",
    "KE": "sw", "UG": "en", "RW": "rw", "NG": "en", "GH": "en", "SN": "fr", "MG": "mg", "GT": "es_MX",
    "CR": "es", "PA": "es", "CO": "es", "EC": "es", "PE": "es", "BO": "es", "CL": "es", "AR": "es",
    "UY": "es", "DO": "es", "GE": "ka", "AM": "hy", "ET": "am", "VN": "vi", "MM": "my", "NP": "ne",
    "EG": "ar",
}

# language -> (ISO 15924 script, "centre" word, "stop" word) as such a country's signs would write them.
LANGUAGE_WORDS: dict[str, tuple[str, str, str]] = {
    "en": ("Latn", "City Centre", "STOP"), "en_US": ("Latn", "Downtown", "STOP"),
    "de": ("Latn", "Zentrum", "STOP"), "fr": ("Latn", "Centre-ville", "STOP"),
    "nl": ("Latn", "Centrum", "STOP"), "it": ("Latn", "Centro", "STOP"), "es": ("Latn", "Centro", "PARE"),
    "es_MX": ("Latn", "Centro", "ALTO"), "ca": ("Latn", "Centre", "STOP"), "pt": ("Latn", "Centro", "STOP"),
    "pt_BR": ("Latn", "Centro", "PARE"), "da": ("Latn", "Centrum", "STOP"),
    "nb": ("Latn", "Sentrum", "STOPP"), "sv": ("Latn", "Centrum", "STOPP"),
    "fi": ("Latn", "Keskusta", "STOP"), "is": ("Latn", "Miðbær", "STOPP"),
    "et": ("Latn", "Kesklinn", "STOP"), "lv": ("Latn", "Centrs", "STOP"), "lt": ("Latn", "Centras", "STOP"),
    "pl": ("Latn", "Centrum", "STOP"), "cs": ("Latn", "Centrum", "STOP"), "sk": ("Latn", "Centrum", "STOP"),
    "hu": ("Latn", "Központ", "STOP"), "ro": ("Latn", "Centru", "STOP"), "sl": ("Latn", "Center", "STOP"),
    "hr": ("Latn", "Centar", "STOP"), "sq": ("Latn", "Qendër", "STOP"), "mt": ("Latn", "Ċentru", "STOP"),
    "tr": ("Latn", "Şehir Merkezi", "DUR"), "ga": ("Latn", "Lár an Bhaile", "STOP"),
    "af": ("Latn", "Middestad", "STOP"), "sw": ("Latn", "Katikati ya Mji", "SIMAMA"),
    "rw": ("Latn", "Mu Mujyi", "HAGARARA"), "mg": ("Latn", "Afovoan-tanàna", "STOP"),
    "ms": ("Latn", "Pusat Bandar", "BERHENTI"), "id": ("Latn", "Pusat Kota", "STOP"),
    "vi": ("Latn", "Trung tâm", "DỪNG"), "el": ("Grek", "Κέντρο", "STOP"), "bg": ("Cyrl", "Център", "STOP"),
    "sr": ("Cyrl", "Центар", "STOP"), "mk": ("Cyrl", "Центар", "STOP"), "ru": ("Cyrl", "Центр", "STOP"),
    "uk": ("Cyrl", "Центр", "STOP"), "kk": ("Cyrl", "Орталық", "STOP"), "ky": ("Cyrl", "Борбор", "STOP"),
    "mn": ("Cyrl", "Төв", "ЗОГС"), "ka": ("Geor", "ცენტრი", "STOP"), "hy": ("Armn", "Կենտրոն", "STOP"),
    "am": ("Ethi", "መሃል ከተማ", "ቁም"), "he": ("Hebr", "מרכז העיר", "עצור"),
    "ar": ("Arab", "وسط المدينة", "قف"), "hi": ("Deva", "शहर केंद्र", "रुकें"),
    "ne": ("Deva", "केन्द्र", "रोक्नुहोस्"), "bn": ("Beng", "শহর কেন্দ্র", "থামুন"),
    "si": ("Sinh", "නගර මධ්‍යය", "නවතින්න"), "ta": ("Taml", "நகர மையம்", "நில்"),
    "dz": ("Tibt", "གྲོང་ཁྱེར།", "STOP"), "th": ("Thai", "ตัวเมือง", "หยุด"),
    "lo": ("Laoo", "ໃຈກາງເມືອງ", "ຢຸດ"), "km": ("Khmr", "កណ្តាលក្រុង", "ឈប់"),
    "my": ("Mymr", "မြို့လယ်", "ရပ်"), "ja": ("Jpan", "市役所", "止まれ"), "ko": ("Kore", "시내", "정지"),
    "zh_Hant": ("Hant", "市中心", "停"), "zh": ("Hans", "市中心", "停"),
}

# language -> a word for "hotel", painted on shop fronts (motel in the US)
SHOP_WORDS: dict[str, str] = {
    "en": "Hotel", "en_US": "Motel", "de": "Hotel", "fr": "Hôtel", "nl": "Hotel", "it": "Albergo",
    "es": "Hotel", "es_MX": "Hotel", "ca": "Hotel", "pt": "Hotel", "pt_BR": "Hotel", "da": "Hotel",
    "nb": "Hotell", "sv": "Hotell", "fi": "Hotelli", "is": "Hótel", "et": "Hotell", "lv": "Viesnīca",
    "lt": "Viešbutis", "pl": "Hotel", "cs": "Hotel", "sk": "Hotel", "hu": "Szálloda", "ro": "Hotel",
    "sl": "Hotel", "hr": "Hotel", "sq": "Hotel", "mt": "Lukanda", "tr": "Otel", "ga": "Óstán", "af": "Hotel",
    "sw": "Hoteli", "rw": "Hoteli", "mg": "Hotely", "ms": "Hotel", "id": "Hotel", "vi": "Khách sạn",
    "el": "Ξενοδοχείο", "bg": "Хотел", "sr": "Хотел", "mk": "Хотел", "ru": "Гостиница", "uk": "Готель",
    "kk": "Қонақ үй", "ky": "Мейманкана", "mn": "Зочид буудал", "ka": "სასტუმრო", "hy": "Հյուրանոց",
    "am": "ሆቴል", "he": "מלון", "ar": "فندق", "hi": "होटल", "ne": "होटल", "bn": "হোটেল", "si": "හෝටලය",
    "ta": "விடுதி", "dz": "Hotel", "th": "โรงแรม", "lo": "ໂຮງແຮມ", "km": "សណ្ឋាគារ", "my": "ဟိုတယ်",
    "ja": "ホテル", "ko": "호텔", "zh_Hant": "酒店", "zh": "酒店",
}


def sign_language(iso_a2: str, cldr_languages: str = "") -> str:
    """Language code (a key of LANGUAGE_WORDS) for a country's signs: the table, else its first CLDR language
    that the word table knows, else English."""
    lang = COUNTRY_LANGUAGE.get(iso_a2.upper())
    if lang:
        return lang
    for code in (c.strip() for c in cldr_languages.split(";")):
        if code in LANGUAGE_WORDS:
            return code
    return "en"
