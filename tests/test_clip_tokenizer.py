"""Tokenizer parity with open_clip's (an independent implementation of OpenAI's BPE) and ``tokenize`` rules."""
from __future__ import annotations

import gzip
import importlib.util
import os

import pytest
import torch

from clip import clip
from clip import simple_tokenizer as st
from clip.simple_tokenizer import SimpleTokenizer

CALTECH101 = """face leopard motorbike accordion airplane anchor ant barrel bass beaver binocular bonsai brain
brontosaurus buddha butterfly camera cannon car_side ceiling_fan cellphone chair chandelier cougar_body cougar_face
crab crayfish crocodile crocodile_head cup dalmatian dollar_bill dolphin dragonfly electric_guitar elephant emu
euphonium ewer ferry flamingo flamingo_head garfield gerenuk gramophone grand_piano hawksbill headphone hedgehog
helicopter ibis inline_skate joshua_tree kangaroo ketch lamp laptop llama lobster lotus mandolin mayfly menorah
metronome minaret nautilus octopus okapi pagoda panda pigeon pizza platypus pyramid revolver rhino rooster saxophone
schooner scissors scorpion sea_horse snoopy soccer_ball stapler starfish stegosaurus stop_sign strawberry sunflower
tick trilobite umbrella watch water_lilly wheelchair wild_cat windsor_chair wrench yin_yang""".split()

OXFORD_PETS = """abyssinian american_bulldog american_pit_bull_terrier basset_hound beagle bengal birman bombay
boxer british_shorthair chihuahua egyptian_mau english_cocker_spaniel english_setter german_shorthaired
great_pyrenees havanese japanese_chin keeshond leonberger maine_coon miniature_pinscher newfoundland persian
pomeranian pug ragdoll russian_blue saint_bernard samoyed scottish_terrier shiba_inu siamese sphynx
staffordshire_bull_terrier wheaten_terrier yorkshire_terrier""".split()

FLOWERS102 = """pink primrose|hard-leaved pocket orchid|canterbury bells|sweet pea|english marigold|tiger lily|
moon orchid|bird of paradise|monkshood|globe thistle|snapdragon|colt's foot|king protea|spear thistle|yellow iris|
globe-flower|purple coneflower|peruvian lily|balloon flower|giant white arum lily|fire lily|pincushion flower|
fritillary|red ginger|grape hyacinth|corn poppy|prince of wales feathers|stemless gentian|artichoke|sweet william|
carnation|garden phlox|love in the mist|mexican aster|alpine sea holly|ruby-lipped cattleya|cape flower|
great masterwort|siam tulip|lenten rose|barbeton daisy|daffodil|sword lily|poinsettia|bolero deep blue|wallflower|
marigold|buttercup|oxeye daisy|common dandelion|petunia|wild pansy|primula|sunflower|pelargonium|bishop of llandaff|
gaura|geranium|orange dahlia|pink-yellow dahlia|cautleya spicata|japanese anemone|black-eyed susan|silverbush|
californian poppy|osteospermum|spring crocus|bearded iris|windflower|tree poppy|gazania|azalea|water lily|rose|
thorn apple|morning glory|passion flower|lotus|toad lily|anthurium|frangipani|clematis|hibiscus|columbine|
desert-rose|tree mallow|magnolia|cyclamen|watercress|canna lily|hippeastrum|bee balm|ball moss|foxglove|
bougainvillea|camellia|mallow|mexican petunia|bromelia|blanket flower|trumpet creeper|blackberry lily"""

FGVC_AIRCRAFT = """707-320|727-200|737-200|737-300|737-400|737-500|737-600|737-700|737-800|737-900|747-100|747-200|
747-300|747-400|757-200|757-300|767-200|767-300|767-400|777-200|777-300|A300B4|A310|A318|A319|A320|A321|A330-200|
A330-300|A340-200|A340-300|A340-500|A340-600|A380|ATR-42|ATR-72|An-12|BAE 146-200|BAE 146-300|BAE-125|
Beechcraft 1900|Boeing 717|C-130|C-47|CRJ-200|CRJ-700|CRJ-900|Cessna 172|Cessna 208|Cessna 525|Cessna 560|
Challenger 600|DC-10|DC-3|DC-6|DC-8|DC-9-30|DH-82|DHC-1|DHC-6|DHC-8-100|DHC-8-300|DR-400|Dornier 328|E-170|E-190|
E-195|EMB-120|ERJ 135|ERJ 145|Embraer Legacy 600|Eurofighter Typhoon|F-16A/B|F/A-18|Falcon 2000|Falcon 900|
Fokker 100|Fokker 50|Fokker 70|Global Express|Gulfstream IV|Gulfstream V|Hawk T1|Il-76|L-1011|MD-11|MD-80|MD-87|
MD-90|Metroliner|Model B200|PA-28|SR-20|Saab 2000|Saab 340|Spitfire|Tornado|Tu-134|Tu-154|Yak-42"""

DTD = """banded blotchy braided bubbly bumpy chequered cobwebbed cracked crosshatched crystalline dotted fibrous
flecked freckled frilly gauzy grid grooved honeycombed interlaced knitted lacelike lined marbled matted meshed
paisley perforated pitted pleated polka-dotted porous potholed scaly smeared spiralled sprinkled stained stratified
striped studded swirly veined waffled woven wrinkled zigzagged""".split()

EUROSAT = """Annual Crop Land|Forest|Herbaceous Vegetation Land|Highway or Road|Industrial Buildings|Pasture Land|
Permanent Crop Land|Residential Buildings|River|Sea or Lake|AnnualCrop|HerbaceousVegetation|PermanentCrop|SeaLake"""

STANFORD_CARS = """2012 Tesla Model S|AM General Hummer SUV 2000|Acura RL Sedan 2012|
Aston Martin V8 Vantage Convertible 2012|Audi TTS Coupe 2012|BMW M3 Coupe 2012|Bugatti Veyron 16.4 Convertible 2009|
Chevrolet Silverado 1500 Hybrid Crew Cab 2012|Dodge Ram Pickup 3500 Crew Cab 2010|Ford F-150 Regular Cab 2012|
Mercedes-Benz SL-Class Coupe 2009|Rolls-Royce Phantom Drophead Coupe Convertible 2012|smart fortwo Convertible 2012|
Volvo XC90 SUV 2007|Hyundai Veloster Hatchback 2012|Ram C/V Cargo Van Minivan 2012|Eagle Talon Hatchback 1998|
McLaren MP4-12C Coupe 2012|Lamborghini Gallardo LP 570-4 Superleggera 2012|Chevrolet Corvette ZR1 2012|
Porsche Panamera Sedan 2012"""

FOOD101 = """apple_pie baby_back_ribs baklava beef_carpaccio beef_tartare beet_salad beignets bibimbap bread_pudding
breakfast_burrito bruschetta caesar_salad cannoli caprese_salad carrot_cake ceviche cheese_plate cheesecake
chicken_curry chicken_quesadilla chicken_wings chocolate_cake chocolate_mousse churros clam_chowder club_sandwich
crab_cakes creme_brulee croque_madame cup_cakes deviled_eggs donuts dumplings edamame eggs_benedict escargots
falafel filet_mignon fish_and_chips foie_gras french_fries french_onion_soup french_toast fried_calamari fried_rice
frozen_yogurt garlic_bread gnocchi greek_salad grilled_cheese_sandwich grilled_salmon guacamole gyoza hamburger
hot_and_sour_soup hot_dog huevos_rancheros hummus ice_cream lasagna lobster_bisque lobster_roll_sandwich
macaroni_and_cheese macarons miso_soup mussels nachos omelette onion_rings oysters pad_thai paella pancakes
panna_cotta peking_duck pho pizza pork_chop poutine prime_rib pulled_pork_sandwich ramen ravioli red_velvet_cake
risotto samosa sashimi scallops seaweed_salad shrimp_and_grits spaghetti_bolognese spaghetti_carbonara spring_rolls
steak strawberry_shortcake sushi tacos takoyaki tiramisu tuna_tartare waffles""".split()

UCF101 = """Apply_Eye_Makeup Apply_Lipstick Archery Baby_Crawling Balance_Beam Band_Marching Baseball_Pitch
Basketball Basketball_Dunk Bench_Press Biking Billiards Blow_Dry_Hair Blowing_Candles Body_Weight_Squats Bowling
Boxing_Punching_Bag Boxing_Speed_Bag Breast_Stroke Brushing_Teeth Clean_And_Jerk Cliff_Diving Cricket_Bowling
Cricket_Shot Cutting_In_Kitchen Diving Drumming Fencing Field_Hockey_Penalty Floor_Gymnastics Frisbee_Catch
Front_Crawl Golf_Swing Haircut Hammer_Throw Hammering Handstand_Pushups Handstand_Walking Head_Massage High_Jump
Horse_Race Horse_Riding Hula_Hoop Ice_Dancing Javelin_Throw Juggling_Balls Jump_Rope Jumping_Jack Kayaking Knitting
Long_Jump Lunges Military_Parade Mixing Mopping_Floor Nunchucks Parallel_Bars Pizza_Tossing Playing_Cello
Playing_Daf Playing_Dhol Playing_Flute Playing_Guitar Playing_Piano Playing_Sitar Playing_Tabla Playing_Violin
Pole_Vault Pommel_Horse Pull_Ups Punch Push_Ups Rafting Rock_Climbing_Indoor Rope_Climbing Rowing Salsa_Spin
Shaving_Beard Shotput Skate_Boarding Skiing Skijet Sky_Diving Soccer_Juggling Soccer_Penalty Still_Rings
Sumo_Wrestling Surfing Swing Table_Tennis_Shot Tai_Chi Tennis_Swing Throw_Discus Trampoline_Jumping Typing
Uneven_Bars Volleyball_Spiking Walking_With_Dog Wall_Pushups Writing_On_Board Yo_Yo""".split()

SUN397 = """abbey|airplane cabin|airport terminal|alley|amphitheater|amusement arcade|apartment building outdoor|
aquarium|bathroom|beach|bedroom|boathouse|kitchen|lecture room|mountain snowy|shopfront|volcano|
wine cellar barrel storage|indoor/general store|outdoor/athletic field"""

IMAGENET = """tench|goldfish|great white shark|tiger shark|hammerhead shark|electric ray|stingray|rooster|hen|
ostrich|brambling|goldfinch|house finch|junco|indigo bunting|American robin|bulbul|jay|magpie|chickadee|
American dipper|kite (bird of prey)|bald eagle|vulture|great grey owl|fire salamander|smooth newt|axolotl|
American bullfrog|tree frog|loggerhead sea turtle|leatherback sea turtle|Carolina anole|
desert grassland whiptail lizard|frilled-necked lizard|Gila monster|European green lizard|Komodo dragon|
Nile crocodile|Shih Tzu|Rhodesian Ridgeback|Yorkshire Terrier|Dandie Dinmont Terrier|Cardigan Welsh Corgi|
St. Bernard|German Shepherd Dog|jack-o'-lantern|T-shirt|yo-yo|hot dog|carbonara|toilet paper|corn cob|
potter's wheel|CD player|Granny Smith|hen of the woods|bolete|go-kart|half-track|payphone|Model T|
one-piece bathing suit|Windsor tie|U.S. mailbox|Christmas stocking|Petri dish|pirate ship|African bush elephant|
red panda|giant panda|baseball player|scuba diver|lady's slipper|rapeseed|daisy|toilet tissue"""

UNICODE_AND_EDGE_CASES = [
    'café', 'naïve résumé', 'Zürich', 'Ångström', 'São Paulo', 'crème brûlée', 'Ærøskøbing', 'łódź', 'İstanbul',
    '北京', '東京タワー', '한국어 텍스트', 'Привет мир', 'مرحبا بالعالم', 'שלום', 'ελληνικά', 'हिन्दी', '😀 emoji',
    '🐱\u200d👤 ninja cat', '👍🏽 thumbs', '🇫🇷 flag', '♥ ★ ☃ → ∞', 'ﬁ ligature', 'ＡＢＣ full width', 'é combining',
    'non\xa0breaking', 'tab\tnew\nline\r\nreturn', 'zero\u200bwidth', 'x² ½ Ⅻ ٣ ๓', 'cafÃ© mojibake',
    '&amp; &lt;b&gt; &amp;amp; &quot;quoted&quot; &#39;apos&#39; &nbsp;space', '&amp;lt;double&amp;gt;',
    'multiple    spaces   here', '   leading and trailing   ', '', '   ', '\n\n',
    'digits 12345 and 3.14159 and 1,000,000 and 2023-10-01', '007 James Bond',
    "don't can't I'm you're we've they'll she'd it's", "DON'T SHOUT IT'S LOUD", "o'clock rock'n'roll ’curly’",
    'punctuation!!! ??? ... --- ,;: (brackets) [square] {curly} <angle>', 'mixed-case CamelCase iPhone',
    'underscores_and-hyphens', 'email@example.com', 'https://example.com/path?q=1&x=2#frag', 'C++ and C# and F#',
    '$100 €50 £20 ¥1000 50% #hashtag @mention', 'a photo of a X X X X dog.',
    'X X X X X X X X X X X X X X X X pizza.', 'a photo of a abyssinian, a type of pet.',
    'a centered satellite photo of Annual Crop Land.', 'a photo of a person doing Apply Eye Makeup.',
    'itap of a {}.', 'a bad photo of the {}.', '<b> &amp;amp; &lt;i&gt; </b>',
]


def _split(block: str) -> list[str]:
    return [s.strip() for s in block.replace("\n", "").split("|") if s.strip()]


ALL_CLASSNAMES = (
    CALTECH101 + OXFORD_PETS + _split(FLOWERS102) + _split(FGVC_AIRCRAFT) + DTD + _split(EUROSAT)
    + _split(STANFORD_CARS) + FOOD101 + UCF101 + _split(SUN397) + _split(IMAGENET)
)


@pytest.fixture(scope="module")
def ours() -> SimpleTokenizer:
    return SimpleTokenizer()


@pytest.fixture(scope="module")
def oracle():
    tokenizer_mod = pytest.importorskip("open_clip.tokenizer")
    return tokenizer_mod.SimpleTokenizer()


def test_class_name_lists_are_complete():
    assert len(CALTECH101) == 100 and len(OXFORD_PETS) == 37 and len(_split(FLOWERS102)) == 102
    assert len(_split(FGVC_AIRCRAFT)) == 100 and len(DTD) == 47 and len(FOOD101) == 101 and len(UCF101) == 101


def test_vocabulary_matches_oracle(ours, oracle):
    assert len(ours.encoder) == 49408
    assert ours.encoder["<|startoftext|>"] == 49406 and ours.encoder["<|endoftext|>"] == 49407
    assert ours.sot_token == oracle.sot_token_id and ours.eot_token == oracle.eot_token_id
    # Same id for every ordinary token (open_clip names the two special tokens differently).
    for token, idx in oracle.encoder.items():
        if idx < 49406:
            assert ours.encoder[token] == idx, token
    assert ours.byte_encoder == oracle.byte_encoder
    assert ours.decoder[320] == "a</w>"


@pytest.mark.parametrize("template", ["{}", "a photo of a {}.", "X X X X {}."])
def test_class_names_match_oracle(ours, oracle, template):
    for name in ALL_CLASSNAMES:
        for text in (name, name.replace("_", " ")):
            text = template.format(text)
            assert ours.encode(text) == oracle.encode(text), text


def test_unicode_html_whitespace_digits_match_oracle(ours, oracle):
    for text in UNICODE_AND_EDGE_CASES:
        assert ours.encode(text) == oracle.encode(text), repr(text)


def test_known_ids_and_cleaning(ours):
    assert ours.encode("a photo of a dog.") == [320, 1125, 539, 320, 1929, 269]
    assert ours.encode("A  Photo\tOF a DOG.") == ours.encode("a photo of a dog.")
    assert ours.encode("&amp;amp;") == ours.encode("&")  # unescaped twice
    assert ours.encode("<b> &amp;amp; x") == ours.encode("<b> & x")  # (ftfy leaves entities alone next to "<")
    assert ours.encode("2023") == [ours.encoder[c + "</w>"] for c in "2023"]  # single digits
    assert ours.encode("") == []
    assert ours.encode("<|startoftext|>x<|endoftext|>")[0] == 49406


def test_decode_round_trip(ours, oracle):
    for text in ["a photo of a dog.", "crème brûlée", "北京 😀", "737-800 F/A-18", "don't"]:
        ids = ours.encode(text)
        assert ours.decode(ids) == oracle.decode(ids)
        assert ours.decode(ids).replace(" ", "") == text.lower().replace(" ", "")
    assert ours.decode(ours.encode("hello world")) == "hello world "


def test_tokenize_rows(ours, oracle):
    texts = ["a photo of a dog.", "", "北京 😀 café"]
    tokens = clip.tokenize(texts)
    assert tokens.dtype == torch.int64 and tokens.shape == (3, 77)
    assert torch.equal(tokens, oracle(texts).long())
    assert tokens[1, :3].tolist() == [49406, 49407, 0]
    assert torch.equal(clip.tokenize("a photo of a dog."), tokens[:1])
    assert clip.tokenize("a b", context_length=10).shape == (1, 10)


def test_tokenize_too_long():
    exactly = "a " * 75  # 75 tokens + SOT + EOT = 77
    assert clip.tokenize(exactly)[0, -1].item() == 49407
    with pytest.raises(RuntimeError, match="too long for context length 77"):
        clip.tokenize(exactly + "a")
    long_text = "the quick brown fox jumps over the lazy dog " * 20
    with pytest.raises(RuntimeError):
        clip.tokenize(["short", long_text])
    cut = clip.tokenize(["short", long_text], truncate=True)
    assert cut[1, 0].item() == 49406 and cut[1, -1].item() == 49407 and (cut[1] > 0).all()
    assert cut[1, :76].tolist() == clip.tokenize(long_text, context_length=200)[0, :76].tolist()


def test_truncation_matches_oracle(oracle):
    texts = ["a photo of a " + "very " * 100 + "big dog.", "北京" * 60]
    assert torch.equal(clip.tokenize(texts, truncate=True), oracle(texts).long())


def test_bpe_path_from_environment(monkeypatch, tmp_path):
    source = st.default_bpe()
    copy = tmp_path / "vocab.txt.gz"
    copy.write_bytes(open(source, "rb").read())
    monkeypatch.setenv("CLIP_BPE_PATH", str(copy))
    assert st.default_bpe() == str(copy)
    assert SimpleTokenizer().encode("a photo") == [320, 1125]
    monkeypatch.setenv("CLIP_BPE_PATH", str(tmp_path / "missing.gz"))
    with pytest.raises(FileNotFoundError, match="CLIP_BPE_PATH"):
        st.default_bpe()


def test_missing_vocabulary_message(monkeypatch):
    monkeypatch.delenv("CLIP_BPE_PATH", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install open_clip_torch.*CLIP_BPE_PATH"):
        st.default_bpe()


def test_vocab_file_is_found_without_importing_open_clip():
    import subprocess
    import sys

    code = (
        "import sys; from clip.simple_tokenizer import default_bpe, SimpleTokenizer; "
        "p = default_bpe(); SimpleTokenizer(); print(p); print('open_clip' in sys.modules)"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    path, imported = out.split()
    assert path.endswith("bpe_simple_vocab_16e6.txt.gz") and imported == "False"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        assert len(fh.read().split("\n")) > 48894
