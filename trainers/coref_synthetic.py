"""Template-generated coreference dialogues in the `coref.jsonl` format, to enlarge 240 authored items.

Each dialogue follows the authored data's shape: two people each post a photo (a caption naming two
objects), talk about them for a few turns (mentioning the referent, its sibling and the other photo's
objects as distractors), and the final utterance points at one object with a demonstrative whose series
follows Korean deixis: 이거/이건/얘 for the speaker's own photo, 저거/저건/쟤 for the partner's, 그거 or a
description (`그 바퀴 두 개 달린 거`) for what was talked about or has not been named. The final clause
fits only its referent (`{ref} 타고 출근하면` -> 자전거), so the answer needs the referent's meaning, not
just the demonstrative. Particles are attached with kiwipiepy (`kiwi.join`), so 크로스백은 / 운동화는
come out right.

Usage: `generate(n, seed)` -> list of dicts, each valid input for `CorefItem.from_json`.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from app.services.coref import OPTION_KEYS, kiwi

SPEAKERS = ("A", "B")


@dataclass(frozen=True)
class Thing:
    """An object that can be in a photo: its name, clauses said about it with a reference in `{ref}`,
    and descriptions that pick it out without naming it (`바퀴 두 개 달린` -> `그 바퀴 두 개 달린 거`)."""

    name: str
    remarks: tuple[str, ...]
    looks: tuple[str, ...]
    animate: bool = False


@dataclass(frozen=True)
class Scene:
    """A photo topic: what the poster says before posting it, where the things lie, what is in it."""

    intros: tuple[str, ...]
    places: tuple[str, ...]
    things: tuple[Thing, ...]
    caption_verb: str = "놓여있는"


def _t(name: str, remarks: list[str], looks: list[str], animate: bool = False) -> Thing:
    return Thing(name, tuple(remarks), tuple(looks), animate)


SCENES: tuple[Scene, ...] = (
    Scene(("주말에 자전거 타고 한강 다녀왔어.", "드디어 라이딩 장비 다 갖췄어."), ("한강 공원 벤치 옆에", "현관 앞에"), (
        _t("자전거", ["{ref} 타고 출근하면 운동 따로 안 해도 되겠다.", "{ref} 바퀴에 바람은 자주 넣어야 해?"], ["바퀴 두 개 달린"]),
        _t("헬멧", ["{ref} 쓰고 오래 타면 머리에 땀 엄청 차지 않아?", "{ref} 안 쓰면 진짜 위험하대."], ["머리에 쓰는 동그란"]),
        _t("물통", ["{ref} 얼음물 넣어 가면 한 시간은 시원하겠다.", "{ref} 한 통이면 한강 한 바퀴 충분해?"], ["물 담는 길쭉한"]),
    )),
    Scene(("캠핑 장비 새로 샀어. 구경해 봐.", "이번 주말에 캠핑 갔었어."), ("잔디 위에", "텐트 앞 데크 위에"), (
        _t("텐트", ["{ref} 치는 데 몇 분 걸려? 혼자서도 돼?", "{ref} 안에서 자면 비 와도 괜찮아?"], ["세모난 큰"]),
        _t("랜턴", ["{ref} 켜 놓으면 밤에도 책 읽을 수 있겠다.", "{ref} 배터리로 몇 시간 불 켜져?"], ["불 들어오는"]),
        _t("버너", ["{ref} 위에 라면 끓이면 진짜 맛있겠다.", "{ref} 가스는 한 통으로 며칠 써?"], ["불 올리는 작은"]),
        _t("캠핑 의자", ["{ref} 앉아서 불멍하면 시간 가는 줄 모르겠다.", "{ref} 접으면 가방에 들어가?"], ["접었다 펴는"]),
    )),
    Scene(("오늘 점심 여기서 먹었어.", "회사 앞에 새로 생긴 식당 가 봤어."), ("식탁 위에", "나무 쟁반 위에"), (
        _t("김치찌개", ["{ref} 국물 얼큰해 보인다. 밥 두 공기 각이네.", "{ref} 돼지고기 많이 들어갔어?"], ["빨간 국물 있는"]),
        _t("계란말이", ["{ref} 폭신해 보인다. 안에 치즈도 들었어?", "{ref} 도톰하게 잘 말았네."], ["노랗게 돌돌 말린"]),
        _t("공깃밥", ["{ref} 추가하면 천 원이야?", "{ref} 고봉으로 담아 주는 집이네."], ["하얀 동그란"]),
    )),
    Scene(("홈카페 차려 봤어.", "오늘 아침은 집에서 여유 부렸어."), ("창가 테이블 위에", "원목 식탁 위에"), (
        _t("커피잔", ["{ref} 들고 창밖 보면 카페 부럽지 않겠다.", "{ref} 손잡이가 예쁘다. 어디서 샀어?"], ["손잡이 달린 하얀"]),
        _t("크루아상", ["{ref} 겹겹이 바삭해 보인다. 버터 향 나겠다.", "{ref} 데워 먹으면 갓 구운 것 같지?"], ["결 살아있는"]),
        _t("모카포트", ["{ref} 불에 올리면 보글보글 소리 나지?", "{ref:로} 내리면 진하게 나와?"], ["은색 주전자 같은"]),
    )),
    Scene(("새 노트북 세팅 끝!", "재택근무 자리 정리했어."), ("책상 위에", "거실 테이블 위에"), (
        _t("노트북", ["{ref} 배터리 하루 종일 가?", "{ref} 화면 커서 작업하기 편하겠다."], ["화면 접히는"]),
        _t("키보드", ["{ref} 누를 때 딸깍 소리 크지 않아?", "{ref} 치는 맛 때문에 일할 맛 나겠다."], ["자판 달린"]),
        _t("마우스", ["{ref} 손에 쥐는 느낌 어때? 손목 안 아파?", "{ref} 무선이라 선 안 걸리겠다."], ["손에 쥐는 작은"]),
        _t("헤드폰", ["{ref} 쓰면 바깥 소리 하나도 안 들려?", "{ref} 오래 쓰면 귀 안 아파?"], ["귀 덮는"]),
    )),
    Scene(("우리 집 막내 자랑 좀 할게.", "산책 다녀왔어."), ("거실 바닥에", "공원 잔디밭에"), (
        _t("강아지", ["{ref} 산책 한 번 나가면 몇 시간 걸어?", "{ref} 꼬리 흔드는 거 봐, 완전 신났네."], ["꼬리 흔드는"], True),
        _t("고양이", ["{ref} 낮에는 하루 종일 자기만 하지?", "{ref} 꾹꾹이 해 주면 진짜 행복하겠다."], ["수염 긴"], True),
        _t("공", ["{ref} 던져 주면 물어 와?", "{ref} 벌써 이빨 자국 가득하네."], ["동그랗고 말랑한"]),
        _t("방석", ["{ref} 위에서만 자는 거야? 푹신해 보인다.", "{ref} 빨아도 털이 안 빠져?"], ["푹신한 네모난"]),
    )),
    Scene(("요즘 홈트 시작했어.", "운동 용품 좀 샀어."), ("매트 위에", "방 한쪽 바닥에"), (
        _t("아령", ["{ref} 몇 킬로짜리야? 팔 떨리겠다.", "{ref} 들고 스쿼트하면 허벅지 터지겠다."], ["무거운 쇳덩이"]),
        _t("요가 매트", ["{ref} 깔고 스트레칭하면 바닥 안 미끄러워?", "{ref} 두꺼워서 무릎 안 아프겠다."], ["돌돌 말리는"]),
        _t("줄넘기", ["{ref} 하루에 몇 개씩 뛰어?", "{ref} 하다가 발에 걸리면 아프던데."], ["손잡이 두 개 달린"]),
    )),
    Scene(("이번에 새로 산 옷들이야.", "옷장 정리하다 찍었어."), ("옷걸이에", "침대 위에"), (
        _t("코트", ["{ref} 입으면 한겨울에도 안 춥겠다.", "{ref} 기장 길어서 멋있다."], ["무릎까지 오는 긴"]),
        _t("니트", ["{ref} 보풀 안 일어나? 빨래할 때 조심해야겠다.", "{ref} 입으면 포근하겠다."], ["털실로 짠"]),
        _t("청바지", ["{ref} 핏 진짜 예쁘다. 몇 사이즈야?", "{ref} 물 빠지면 더 멋있어지겠다."], ["파란 바지"]),
        _t("목도리", ["{ref} 두르면 목 따뜻하겠다.", "{ref} 길게 늘어뜨려도 예쁘겠다."], ["목에 두르는 긴"]),
    )),
    Scene(("베란다 텃밭 수확했어!", "화분 키우는 거 보여줄게."), ("베란다 선반 위에", "마당 흙 위에"), (
        _t("방울토마토", ["{ref} 빨갛게 익은 거 따 먹으면 달겠다.", "{ref} 한 줄기에 몇 알씩 열려?"], ["빨간 동글동글한"]),
        _t("상추", ["{ref} 삼겹살이랑 싸 먹으면 최고겠다.", "{ref} 뜯어도 또 자라?"], ["초록 잎사귀"]),
        _t("물뿌리개", ["{ref:로} 아침마다 물 줘?", "{ref} 주둥이가 길어서 물 주기 편하겠다."], ["주둥이 긴"]),
        _t("선인장", ["{ref} 가시 찔리면 엄청 아프던데.", "{ref} 물은 한 달에 한 번만 줘도 돼?"], ["가시 돋은"]),
    )),
    Scene(("오늘 바다 왔어!", "휴가 첫날 해변이야."), ("모래사장 위에", "해변 파라솔 아래에"), (
        _t("서핑보드", ["{ref} 위에 한 번 딱 서면 진짜 짜릿하겠다.", "{ref} 타다가 파도에 휩쓸리면 무섭지 않아?"], ["길쭉한 판"]),
        _t("튜브", ["{ref} 끼고 둥둥 떠 있으면 천국이겠다.", "{ref} 바람 넣느라 힘들었겠다."], ["공기 넣는 동그란"]),
        _t("선글라스", ["{ref} 끼면 눈부셔도 괜찮겠다.", "{ref} 렌즈 색 예쁘다."], ["까만 렌즈 달린"]),
        _t("모래성", ["{ref} 파도 오면 다 무너지겠다ㅋㅋ", "{ref} 쌓는 데 한 시간 걸렸어?"], ["모래로 쌓은"]),
    )),
    Scene(("빵 구워 봤어!", "베이킹 클래스 다녀왔어."), ("오븐 옆 조리대 위에", "식힘망 위에"), (
        _t("식빵", ["{ref} 결대로 찢어 먹으면 쫄깃하겠다.", "{ref} 토스트 해 먹으면 맛있겠다."], ["네모나고 폭신한"]),
        _t("머핀", ["{ref} 위에 초코칩 박힌 거 맛있겠다.", "{ref} 한 입에 다 들어가겠다."], ["종이컵에 담긴 작은"]),
        _t("반죽", ["{ref} 발효 몇 시간 시켜야 해?", "{ref} 치대느라 팔 아팠겠다."], ["말랑말랑 부푼"]),
    )),
    Scene(("이사 와서 방 꾸몄어.", "새로 산 가구 들어왔어."), ("방 안에", "거실 한쪽에"), (
        _t("소파", ["{ref} 누우면 바로 잠들겠다. 푹신해 보여.", "{ref} 세 명은 앉을 수 있겠다."], ["길쭉하고 푹신한"]),
        _t("스탠드", ["{ref} 켜 놓으면 방 분위기 확 살겠다.", "{ref} 불빛 색 바꿀 수 있어?"], ["불 켜지는 길쭉한"]),
        _t("러그", ["{ref} 깔아 놓으니까 발 시렵지 않겠다.", "{ref} 세탁기에 빨아도 돼?"], ["바닥에 까는"]),
        _t("액자", ["{ref} 안에 있는 그림 누가 그린 거야?", "{ref} 벽에 걸면 예쁘겠다."], ["벽에 거는 네모난"]),
    )),
    Scene(("악기 배우기 시작했어.", "연습실 왔어."), ("연습실 바닥에", "의자 옆에"), (
        _t("기타", ["{ref} 줄 누르면 손가락 아프지 않아?", "{ref} 튜닝은 매번 해야 해?"], ["줄 여섯 개 달린"]),
        _t("보면대", ["{ref} 높이 조절돼? 악보 올려놓기 편하겠다.", "{ref} 접으면 가방에 들어가?"], ["악보 올리는"]),
        _t("메트로놈", ["{ref} 틀어 놓고 박자 맞추는 거지?", "{ref} 똑딱 소리 계속 들으면 최면 걸릴 것 같아."], ["똑딱거리는"]),
    )),
    Scene(("아기 백일 사진 찍었어.", "조카 보러 왔어."), ("거실 매트 위에", "아기 침대 안에"), (
        _t("아기", ["{ref} 볼살 좀 봐, 진짜 말랑하겠다.", "{ref} 요즘 밤에 잘 자?"], ["볼살 통통한"], True),
        _t("딸랑이", ["{ref} 흔들면 아기가 웃어?", "{ref} 소리 나면 고개 돌려?"], ["흔들면 소리 나는"]),
        _t("젖병", ["{ref} 한 번에 얼마나 먹어?", "{ref} 소독하는 거 일이겠다."], ["분유 담는"]),
    )),
    Scene(("낚시 다녀왔어.", "오늘 조황 좋았어."), ("방파제 위에", "배 위 갑판에"), (
        _t("낚싯대", ["{ref} 휘는 거 보니까 큰 거 걸렸었나 보다.", "{ref} 던질 때 줄 엉키지 않아?"], ["길게 휘는"]),
        _t("아이스박스", ["{ref} 안에 고기 가득 찼어?", "{ref} 얼음 채워 가면 하루 종일 시원해?"], ["뚜껑 달린 네모난"]),
        _t("우럭", ["{ref} 회 떠 먹으면 쫄깃하겠다.", "{ref} 매운탕 끓이면 진짜 맛있겠다."], ["비늘 있는", "입 큰"], True),
    )),
    Scene(("보드게임 카페 왔어.", "친구들이랑 게임했어."), ("테이블 위에", "게임 카페 탁자 위에"), (
        _t("주사위", ["{ref} 굴렸는데 계속 1만 나왔어?", "{ref} 던질 때 제일 떨리지."], ["작은 정육면체"]),
        _t("카드", ["{ref} 섞는 거 손 빨라야 하잖아.", "{ref} 다 외우면 이길 수 있어?"], ["손에 쥐는 납작한"]),
        _t("모래시계", ["{ref} 다 떨어지기 전에 맞혀야 하는 거야?", "{ref} 뒤집으면 몇 초야?"], ["모래 떨어지는"]),
    )),
    Scene(("시험공부 중이야.", "도서관 자리 잡았어."), ("도서관 책상 위에", "독서대 앞에"), (
        _t("문제집", ["{ref} 다 풀면 점수 오르겠다.", "{ref} 벌써 반 넘게 풀었네."], ["두꺼운 네모난"]),
        _t("형광펜", ["{ref:로} 줄 긋다 보면 전부 칠하게 되지 않아?", "{ref} 색 진짜 쨍하다."], ["노란 뚜껑 달린"]),
        _t("귀마개", ["{ref} 끼면 옆 사람 소리 하나도 안 들려?", "{ref} 오래 끼면 귀 아프지 않아?"], ["귀에 쏙 들어가는"]),
        _t("포스트잇", ["{ref} 덕지덕지 붙여 놓으니까 공부 많이 한 티 난다.", "{ref:에} 외울 거 써서 붙이는 거야?"], ["붙였다 떼는"]),
    )),
    Scene(("캘리그라피 배우고 있어.", "그림 그리는 중이야."), ("책상 위에", "이젤 앞에"), (
        _t("붓", ["{ref} 끝이 갈라지면 글씨가 번지던데.", "{ref} 쓰고 나서 바로 빨아야 해?"], ["털 달린 길쭉한"]),
        _t("물감", ["{ref} 섞어서 색 만드는 거 재밌겠다.", "{ref} 짜 놓으면 금방 굳어?"], ["짜서 쓰는"]),
        _t("스케치북", ["{ref} 벌써 몇 장 남았어?", "{ref} 다 채우면 전시회 해도 되겠다."], ["종이 묶음"]),
    )),
    Scene(("김장했어!", "엄마랑 반찬 만들었어."), ("부엌 바닥 비닐 위에", "조리대 위에"), (
        _t("배추", ["{ref} 절이는 데만 하루 걸렸지?", "{ref} 속이 노랗게 꽉 찼네."], ["잎 겹겹이 쌓인"]),
        _t("고무장갑", ["{ref} 안 끼면 손이 빨개지잖아.", "{ref} 끼고 버무려야 안 매워."], ["빨간 손 모양"]),
        _t("김치통", ["{ref} 몇 개나 채웠어?", "{ref} 꽉 차면 냉장고 자리 없겠다."], ["뚜껑 닫는 커다란"]),
    )),
    Scene(("등산 다녀왔어.", "정상 찍었어!"), ("정상 표지석 앞에", "산길 바위 위에"), (
        _t("등산화", ["{ref} 신으면 돌길에서도 안 미끄러져?", "{ref} 발목까지 잡아 줘서 편하겠다."], ["끈 달린 튼튼한"]),
        _t("등산 스틱", ["{ref} 짚고 내려오면 무릎 덜 아프대.", "{ref} 길이 조절돼?"], ["짚고 다니는 막대"]),
        _t("보온병", ["{ref:에} 커피 타 가면 정상에서 마시기 딱이겠다.", "{ref} 하루 종일 따뜻해?"], ["뚜껑이 컵 되는"]),
    )),
    Scene(("떡볶이 만들어 먹었어.", "야식 시켰어."), ("거실 상 위에", "배달 봉지 옆에"), (
        _t("떡볶이", ["{ref} 국물에 밥 비벼 먹으면 최고지.", "{ref} 떡 쫄깃해 보인다. 맵지 않아?"], ["빨간 소스 묻은"]),
        _t("튀김", ["{ref} 바삭해 보인다. 떡볶이 국물에 찍어 먹어야지.", "{ref} 식으면 눅눅해지던데."], ["바삭한 황금색"]),
        _t("순대", ["{ref} 간이랑 같이 나와?", "{ref} 소금에 찍어 먹어, 떡볶이에 찍어 먹어?"], ["까맣고 동그란"]),
    )),
    Scene(("요즘 레고 조립해.", "취미로 프라모델 만들어."), ("책상 매트 위에", "장식장 앞에"), (
        _t("레고 성", ["{ref} 다 만들면 장식장에 세워 둘 거야?", "{ref} 부품 몇 개짜리야?"], ["탑 달린"]),
        _t("설명서", ["{ref} 없으면 절대 못 만들겠다.", "{ref} 몇 페이지짜리야?"], ["그림 있는 두꺼운"]),
        _t("핀셋", ["{ref:로} 작은 부품 집는 거야?", "{ref} 끝이 뾰족해서 조심해야겠다."], ["끝이 뾰족한"]),
    )),
    Scene(("동물원 다녀왔어.", "아쿠아리움 갔었어."), ("울타리 너머로", "유리 수조 안에"), (
        _t("기린", ["{ref} 목 진짜 길다. 나뭇잎 먹는 거 봤어?", "{ref} 키가 몇 미터야?"], ["목 긴"], True),
        _t("펭귄", ["{ref} 뒤뚱뒤뚱 걷는 거 귀엽겠다.", "{ref} 물속에서는 엄청 빠르다며?"], ["뒤뚱거리는"], True),
        _t("거북이", ["{ref} 등껍질 안으로 숨는 거 봤어?", "{ref} 몇 살이래? 오래 산다던데."], ["등껍질 있는"], True),
    ), caption_verb="보이는"),
    Scene(("우리 할머니 댁 왔어.", "가족 모임 했어."), ("마루에", "마당 평상 위에"), (
        _t("할머니", ["{ref} 정정하시다. 요즘도 밭일하셔?", "{ref} 연세가 어떻게 되셔?"], ["머리 하얗게 센"], True),
        _t("송편", ["{ref} 안에 깨 들었어, 콩 들었어?", "{ref} 직접 빚은 거면 모양 다 다르겠다."], ["반달 모양"]),
        _t("식혜", ["{ref} 살얼음 동동 뜬 거 시원하겠다.", "{ref} 밥알까지 떠먹으면 최고지."], ["밥알 뜬 달달한"]),
    ), caption_verb="있는"),
    Scene(("세차했어.", "차 안 정리했어."), ("주차장에", "차 안에"), (
        _t("자동차", ["{ref} 광 나는 거 봐. 새 차 같다.", "{ref} 연비 잘 나와?"], ["바퀴 네 개 달린"]),
        _t("방향제", ["{ref} 냄새 너무 세지 않아?", "{ref} 달아 놓으니까 차에서 좋은 냄새 나겠다."], ["향 나는 작은"]),
        _t("블랙박스", ["{ref} 있어야 사고 나도 안심이지.", "{ref} 주차 중에도 녹화돼?"], ["유리에 붙은 작은"]),
    )),
    Scene(("스키장 왔어!", "보드 타러 왔어."), ("눈밭 위에", "리프트 앞에"), (
        _t("스노보드", ["{ref} 타다가 엉덩방아 많이 찧었지?", "{ref} 위에서 턴하는 거 배웠어?"], ["넓적한 판"]),
        _t("고글", ["{ref} 쓰면 눈보라 쳐도 앞이 보여?", "{ref} 김 서리지 않아?"], ["눈 가리는"]),
        _t("장갑", ["{ref} 끼면 손 안 시려?", "{ref} 두꺼워서 폰 만지기 힘들겠다."], ["손 넣는 두툼한"]),
    )),
    Scene(("꽃집 들렀어.", "꽃꽂이 수업 들었어."), ("꽃집 진열대 위에", "테이블 위 꽃병 옆에"), (
        _t("장미", ["{ref} 가시 다 떼고 꽂은 거야?", "{ref} 향 진하겠다."], ["빨간 꽃잎 겹친"]),
        _t("꽃병", ["{ref} 물은 며칠마다 갈아?", "{ref} 유리라 깨질까 봐 조심해야겠다."], ["유리로 된"]),
        _t("안개꽃", ["{ref} 하얗게 퍼진 거 예쁘다.", "{ref} 말리면 오래 두고 볼 수 있대."], ["하얗고 자잘한"]),
    )),
    Scene(("사진 찍으러 출사 나왔어.", "카메라 새로 샀어."), ("삼각대 옆에", "가방 위에"), (
        _t("카메라", ["{ref:로} 찍으면 폰이랑 느낌 완전 다르지?", "{ref} 셔터 소리 좋겠다."], ["렌즈 달린 까만"]),
        _t("삼각대", ["{ref} 세워 놓고 야경 찍으면 안 흔들리겠다.", "{ref} 다리 길이 조절돼?"], ["다리 세 개 달린"]),
        _t("필름", ["{ref} 한 롤에 몇 장 찍혀?", "{ref} 현상하는 데 얼마나 걸려?"], ["돌돌 말린 작은"]),
    )),
    Scene(("마트 장 봐 왔어.", "과일 사 왔어."), ("부엌 식탁 위에", "장바구니 안에"), (
        _t("수박", ["{ref} 두드리면 통통 소리 나는 거 골랐어?", "{ref} 반 갈라서 숟가락으로 퍼 먹자."], ["초록 줄무늬"]),
        _t("바나나", ["{ref} 금방 까매지니까 빨리 먹어.", "{ref} 우유랑 갈아 먹으면 맛있어."], ["노랗고 길쭉한"]),
        _t("우유", ["{ref} 유통기한 넉넉해?", "{ref} 시리얼에 부어 먹으면 딱이겠다."], ["하얀 팩"]),
    )),
)

# Middle-turn templates: `{x:은}` is object x with the particle 은/는 attached by kiwipiepy.
ASK_PARTNER = ("{x:은} 어디서 샀어?", "{x} 진짜 좋아 보인다.", "{x:이} 제일 눈에 띄네.", "근데 {x:은} 새로 산 거야?",
               "와 {x} 예쁘다. 얼마 줬어?")
TELL_OWN = ("{x:은} 선물 받은 거야.", "{x:은} 요즘 제일 자주 써.", "{x:은} 인터넷으로 샀어.", "{x:은} 생각보다 별로였어.",
            "응 {x:은} 진짜 만족해.")
REACTIONS = ("오 좋다!", "와 부럽다.", "대박, 잘 나왔다.", "오 분위기 좋네.")
SECOND_POSTER = ("나도 보여줄게.", "나는 이거 하고 있었어.", "나도 오늘 찍은 거 있어.")
FILLERS = ("ㅋㅋ 그렇구나.", "진짜? 신기하다.", "그치, 나도 그렇게 생각해.", "헐 대박.", "아 그랬구나.")

# The demonstrative series: own photo -> proximal, partner's -> distal; medial for either.
PRONOUNS = {"proximal": ("이거", "이건"), "distal": ("저거", "저건"), "medial": ("그거", "그건")}
ANIMATE_PRONOUNS = {"proximal": ("얘", "얘는"), "distal": ("쟤", "쟤는"), "medial": ("걔", "걔는")}


@dataclass(frozen=True)
class GeneratorSettings:
    """How often each cue holds, chosen to resemble the authored data (FINDINGS.md: 이거 -> own photo
    in 52 of 61 items, 저거 -> partner's in 48 of 51; descriptions mostly for unnamed objects)."""

    deixis_consistency: float = 0.9  # P(proximal for own / distal for partner's)
    medial_rate: float = 0.2  # P(그거 / a description instead of 이거/저거)
    description_rate: float = 0.3  # P(a description `그 ... 거` when the referent was never named)
    referent_named_rate: float = 0.6  # P(the referent was named in the middle turns)
    sibling_named_rate: float = 0.7  # P(the referent's photo sibling was named: the distractor)
    middle_turns: tuple[int, int] = (3, 6)


# Particle -> kiwipiepy tag, for `kiwi.join` to choose the allomorph (은/는, 이/가, 와/과, 을/를).
PARTICLE_TAGS = {"은": "JX", "이": "JKS", "와": "JC", "을": "JKO", "로": "JKB", "에": "JKB"}
SLOT = re.compile(r"\{(\w+)(?::(\w+))?\}")


@lru_cache(maxsize=4096)
def with_particle(word: str, particle: str) -> str:
    return kiwi().join([(word, "NNG"), (particle, PARTICLE_TAGS[particle])])


def fill(template: str, **words: str) -> str:
    """Fill `{x}` / `{x:은}` slots; particles agree with the word's final sound."""
    return SLOT.sub(lambda m: with_particle(words[m[1]], m[2]) if m[2] else words[m[1]], template)


@dataclass
class _Photo:
    owner: str
    scene: Scene
    things: tuple[Thing, Thing]

    def caption(self, rng: random.Random) -> str:
        first, second = self.things
        return (f"{rng.choice(self.scene.places)} {with_particle(first.name, '와')} "
                f"{with_particle(second.name, '이')} {self.scene.caption_verb} 사진")


def _reference(rng: random.Random, referent: Thing, series: str, named: bool, settings: GeneratorSettings) -> str:
    """How the final speaker points at the referent: a pronoun of `series`, or a description."""
    if not named and referent.looks and rng.random() < settings.description_rate:
        return f"{rng.choice(('그', '저')) if series == 'distal' else '그'} {rng.choice(referent.looks)} 거"
    table = ANIMATE_PRONOUNS if referent.animate else PRONOUNS
    return rng.choice(table[series])


def _series(rng: random.Random, own: bool, settings: GeneratorSettings) -> str:
    if rng.random() < settings.medial_rate:
        return "medial"
    consistent = rng.random() < settings.deixis_consistency
    return "proximal" if own == consistent else "distal"


def _middle_turns(rng: random.Random, photos: list[_Photo], referent: Thing, sibling: Thing, final_speaker: str,
                  settings: GeneratorSettings) -> list[dict]:
    """Chat about the photos: distractors named in random order, the referent (if at all) last or near it.

    Speakers alternate and the last middle turn is the partner's, so the final speaker answers it; who
    speaks decides whether an object is asked about (partner's) or told about (own).
    """
    named: list[Thing | None] = [t for p in photos for t in p.things
                                 if t not in (referent, sibling) and rng.random() < 0.5]
    if rng.random() < settings.sibling_named_rate:
        named.append(sibling)
    rng.shuffle(named)
    if rng.random() < settings.referent_named_rate:
        named.insert(len(named) - rng.randint(0, min(1, len(named))), referent)
    low, high = settings.middle_turns
    while len(named) < low or (len(named) < high and rng.random() < 0.3):
        named.insert(rng.randint(0, len(named)), None)
    partner = SPEAKERS[1 - SPEAKERS.index(final_speaker)]
    speakers = [partner if (len(named) - i) % 2 == 1 else final_speaker for i in range(len(named))]
    owner_of = {t.name: p.owner for p in photos for t in p.things}
    turns = []
    for thing, speaker in zip(named, speakers):
        if thing is None:
            text = rng.choice(FILLERS)
        else:
            text = fill(rng.choice(TELL_OWN if owner_of[thing.name] == speaker else ASK_PARTNER), x=thing.name)
        turns.append({"speaker": speaker, "text": text})
    return turns


def generate_item(rng: random.Random, index: int, settings: GeneratorSettings = GeneratorSettings()) -> dict:
    """One synthetic dialogue in the `coref.jsonl` format."""
    first_poster = rng.choice(SPEAKERS)
    posters = (first_poster, SPEAKERS[1 - SPEAKERS.index(first_poster)])
    scenes = rng.sample(SCENES, 2)
    photos = [_Photo(owner, scene, tuple(rng.sample(scene.things, 2))) for owner, scene in zip(posters, scenes)]
    by_owner = {p.owner: p for p in photos}

    final_speaker = rng.choice(SPEAKERS)
    target_photo = rng.choice(photos)
    referent = rng.choice(target_photo.things)
    sibling = next(t for t in target_photo.things if t is not referent)

    turns = [{"speaker": posters[0], "text": rng.choice(photos[0].scene.intros)},
             {"speaker": posters[0], "photo": 1, "caption": photos[0].caption(rng)},
             {"speaker": posters[1], "text": f"{rng.choice(REACTIONS)} {rng.choice(SECOND_POSTER)}"},
             {"speaker": posters[1], "photo": 2, "caption": photos[1].caption(rng)}]
    middle = _middle_turns(rng, photos, referent, sibling, final_speaker, settings)
    named = any(referent.name in t["text"] for t in middle)
    series = _series(rng, target_photo.owner == final_speaker, settings)
    remark = rng.choice(referent.remarks)
    final = {"speaker": final_speaker, "text": fill(remark, ref=_reference(rng, referent, series, named, settings))}

    options, answer = {}, ""
    for key, (owner, thing) in zip(OPTION_KEYS, [(o, t) for o in SPEAKERS for t in by_owner[o].things]):
        options[key] = f"{owner}가 올린 사진 속 {thing.name}"
        answer = key if thing is referent else answer
    return {"id": f"S-{index:05d}", "turns": turns + middle + [final], "options": options, "answer": answer}


def generate(n: int, seed: int = 0, settings: GeneratorSettings = GeneratorSettings()) -> list[dict]:
    """`n` synthetic dialogues, reproducible from `seed`."""
    rng = random.Random(seed)
    return [generate_item(rng, i, settings) for i in range(n)]
