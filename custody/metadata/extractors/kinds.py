"""The warning policy: which metadata fields are sensitive, and of what kind, in one table."""

from __future__ import annotations

import functools
import re

GPS = "gps"
SERIAL = "device_serial"
NAMES = "names"
THUMBNAIL = "thumbnail"
DATES = "dates"
FLAGS = frozenset({GPS, SERIAL, NAMES, THUMBNAIL, DATES})  # the booleans of `Sensitive`
# The kinds whose values go to `sensitive_values`, for the byte scan of sharing copies: text
# that identifies a person, place or device. Dates, software and camera models are too
# common as plain text (and too short) to scan for without false alarms.
SCANNED = frozenset({GPS, SERIAL, NAMES, "location-text", "unique-id", "contact", "organisation"})
# Kinds an uploader is warned of but a sharing copy keeps, because they are what the document
# shows rather than data about it: a PDF note's text (ISO 32000-1 §12.5.2, /Contents is the
# text the annotation displays), kept as a page's text is, its author and dates removed.
KEPT_AS_CONTENT = frozenset({"annotation-text"})


def _words(kind: str, *words: str) -> tuple[re.Pattern[str], str]:
    """A rule: the field's last segment is one of `words` (case-insensitive)."""
    alternatives = "|".join(re.escape(word) for word in words)
    return re.compile(rf"(?:^|[:/@ ])(?:{alternatives})$", re.IGNORECASE), kind


def _match(kind: str, pattern: str) -> tuple[re.Pattern[str], str]:
    return re.compile(pattern, re.IGNORECASE), kind


# Ordered: the first rule that matches a field name gives its kind ("": not sensitive).
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # ImageMagick copies the ICC profile's vendor, model and copyright into PNG text; and
    # OOXML's LinksUpToDate is a flag, not a date.
    _match("", r"/icc:[^/]*$|^OOXML:app/LinksUpToDate$"),
    # People named by a "name": PowerPoint comment authors (ECMA-376 §19.4.1), and the
    # people in an image's face regions (MWG 2.0 §5.7) or listed in it (IPTC Extension).
    _match(NAMES, r"^OOXML:ppt/(commentAuthors|authors)\.xml@name$|^XMP:mwg-rs:.*mwg-rs:Name$"),
    _words(NAMES, "PersonInImage", "PersonInImageName"),
    _match("location-text", r"^XMP:photoshop:(City|State|Country)$"),
    # PDF 32000-1 Table 317: /Creator is the product that made the original, not a person.
    _match("software", r"^PDF:Info/Creator$"),
    # ISO 32000-1 §12.5.6.2: an annotation's /T is its author (shown as the popup's title).
    _match(NAMES, r"^PDF:Annots/T$"),
    _match("annotation-text", r"^PDF:Annots/Contents$"),
    _match(THUMBNAIL, r"^PDF:Thumb$|^(OOXML:docProps|ODF:Thumbnails)/thumbnail|^HEIF:iref/thmb$"),
    _match(THUMBNAIL, r"^ID3:(APIC|PIC)\b|^FLAC:Picture|^JPEG:APP0/JFXX$|^JPEG:APP2/(MPF|FPXR)$"),
    _match("embedded-files", r"^PDF:EmbeddedFiles$|^OOXML:\w+/embeddings/|^ODF:Object"),
    _match("private-app-data", r"^PDF:PieceInfo$|^ID3:PRIV\b"),
    _match("comment", r"^ID3:(COMM|USLT)\b|^JPEG:COM$"),
    _match("makernote", r"^EXIF:EXIF MakerNote$"),
    _match("revision-ids", r"^OOXML:word/settings\.xml/w:rsid$"),
    # ID3v2.4 §4.2.2 (people), §4.2.4 (TOWN: the file's owner), §4.2.5 (sort orders).
    _match(NAMES, r"^ID3:(TPE[1-4]|TCOM|TEXT|TOLY|TOPE|TENC|TIPL|TMCL|IPLS|TOWN|TSO[P2C])\b"),
    _match(DATES, r"^ID3:(TDRC|TDOR|TDRL|TDEN|TDTG|TYER|TDAT|TIME|TORY|TRDA)\b"),
    _match("software", r"^ID3:TSSE\b"),
    # The location of a recording or picture, as coordinates (QuickTime ©xyz, ISO 6709).
    _words(GPS, "©xyz", "com.apple.quicktime.location.ISO6709", "Latitude", "Longitude"),
    _match(GPS, r"^QuickTime:udta/loci$"),  # 3GPP TS 26.244 §8.9: location information
    # QuickTime File Format, "QuickTime metadata keys" (com.apple.quicktime.*).
    _match(NAMES, r"^QuickTime:keys/com\.apple\.quicktime\.(author|artist|displayname|copyright)$"),
    _match("software", r"^QuickTime:keys/com\.apple\.quicktime\.software$"),
    # 3GPP author and copyright; AIFF author and copyright; ODF text fields with the author's
    # or sender's name (ODF 1.3 Part 3 §7.3.6-7) and annotation initials.
    _match(NAMES, r"^QuickTime:udta/(auth|cprt)$|^AIFF:(AUTH|\(c\))$"),
    _words(NAMES, "author-name", "author-initials", "creator-initials", "sender-firstname"),
    _words(NAMES, "sender-lastname", "sender-initials"),
    _words("contact", "sender-email", "sender-phone-private", "sender-phone-work"),
    _match(DATES, r"^PDF:Annots/M$"),
    _match(GPS, r"(?:^|[:/@ ])GPS[^:/@ ]*$"),
    # EBU R 99: a BWF OriginatorReference holds the recorder's serial number.
    _match(SERIAL, r"^RIFF:bext/OriginatorReference$"),
    _match(NAMES, r"^RIFF:bext/Originator$"),
    # Canon's SerialNumberFormat says how to print the serial; it is not one.
    _match(SERIAL, r"(?:^|[:/@ ])[^:/@ ]*Serial(?!NumberFormat)[^:/@ ]*$"),
    _match("unique-id", r"^PDF:ID$"),
    _words("unique-id", "ImageUniqueID", "DocumentID", "InstanceID", "OriginalDocumentID"),
    _words(THUMBNAIL, "JPEGThumbnail", "TIFFThumbnail", "Thumbnails", "ThumbnailImage"),
    _words(THUMBNAIL, "PreviewImage", "Picture", "METADATA_BLOCK_PICTURE", "COVERART", "covr"),
    _words(THUMBNAIL, "Cover Art (Front)", "Cover Art (Back)"),
    # People. Copyright and rights notices are counted: in a witness's own recording or
    # photo they usually name the person who made it. So are audio artists: in a field
    # recording the "artist" is the person who pressed record.
    _words(NAMES, "Artist", "Author", "XPAuthor", "OwnerName", "CameraOwnerName", "Owner"),
    _words(NAMES, "creator", "initial-creator", "LastModifiedBy", "printed-by", "Manager"),
    _words(NAMES, "Copyright", "CopyrightNotice", "rights", "cprt", "Credit", "CaptionWriter"),
    _words(NAMES, "By-line", "Writer-Editor", "author", "initials", "userId", "displayName"),
    _words(NAMES, "ARTISTS", "PERFORMER", "COMPOSER", "ALBUMARTIST", "ALBUM ARTIST"),
    _words(NAMES, "CONDUCTOR", "LYRICIST", "ARRANGER", "ENCODED-BY", "ENCODEDBY", "ARTISTSORT"),
    _words(NAMES, "ALBUMARTISTSORT", "©ART", "aART", "©wrt", "©aut", "©prf", "soar", "soaa"),
    _words(NAMES, "IART", "IENG", "ICOP", "ICMS"),  # RIFF INFO (artist, engineer, ©, composer)
    _words("contact", "CONTACT", "CiEmailWork", "CiTelWork", "CiUrlWork", "CiAdrExtadr"),
    _words("location-text", "City", "Sub-location", "Sublocation", "Province-State"),
    _words("location-text", "Country", "Country-PrimaryLocationName", "CountryName", "LOCATION"),
    _words("location-text", "Country-PrimaryLocationCode", "CountryCode", "ProvinceState"),
    _words("location-text", "CiAdrCity", "CiAdrCtry", "CiAdrRegion", "CiAdrPcode"),
    _words("organisation", "Company", "ORGANIZATION", "publisher", "TPUB"),
    _words("software", "Software", "CreatorTool", "Producer", "Application", "generator"),
    _words("software", "HostComputer", "ProcessingSoftware", "softwareAgent", "ENCODER"),
    _words("software", "©too", "©swr", "ISFT"),
    _words("camera-model", "Make", "Model", "LensMake", "LensModel", "Lens", "©mak", "©mod"),
    _words("camera-model", "UniqueCameraModel", "LocalizedCameraModel"),
    _words("camera-model", "com.apple.quicktime.make", "com.apple.quicktime.model"),
    _words("comment", "UserComment", "XPComment", "Comment", "ImageDescription", "©cmt"),
    _words("comment", "description", "Caption-Abstract", "ICMT"),
    _words(DATES, "created", "modified", "tIME", "©day", "Creation Time", "LastPrinted"),
    _words(DATES, "OffsetTime", "OffsetTimeOriginal", "OffsetTimeDigitized", "ICRD"),
    _words(DATES, "TimeCreated", "DigitalCreationTime", "OriginationTime"),
    _match(DATES, r"(?:^|[:/@ ])[^:/@ ]*date[^:/@ ]*$"),
)


@functools.lru_cache(maxsize=8192)  # the same few hundred tag names, file after file
def classify(name: str) -> str | None:
    """The sensitive kind of the field called `name`, or None when it is not sensitive."""
    for pattern, kind in _RULES:
        if pattern.search(name):
            return kind or None
    return None
