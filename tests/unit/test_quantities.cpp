#include <gtest/gtest.h>

#include "util/units.hpp"

using namespace oomguard;
using namespace std::chrono_literals;

TEST(ParseSize, Units) {
    EXPECT_EQ(*parse_size("350MiB"), 350ull << 20);
    EXPECT_EQ(*parse_size("2GiB"), 2ull << 30);
    EXPECT_EQ(*parse_size("2G"), 2ull << 30);
    EXPECT_EQ(*parse_size("512KiB"), 512ull << 10);
    EXPECT_EQ(*parse_size("1.5GiB"), 3ull << 29);
    EXPECT_EQ(*parse_size(" 100 MiB "), 100ull << 20);
    EXPECT_EQ(*parse_size("17B"), 17u);
    EXPECT_EQ(*parse_size("1TiB"), 1ull << 40);
}

TEST(ParseSize, Errors) {
    auto bare = parse_size("350");
    ASSERT_FALSE(bare);
    EXPECT_NE(bare.error().message.find("has no unit"), std::string::npos);
    EXPECT_NE(bare.error().message.find("MiB"), std::string::npos)
        << "should say which unit was meant";
    auto neg = parse_size("-5MiB");
    ASSERT_FALSE(neg);
    EXPECT_NE(neg.error().message.find("negative"), std::string::npos);
    auto unit = parse_size("5XB");
    ASSERT_FALSE(unit);
    EXPECT_NE(unit.error().message.find("unknown unit \"XB\""), std::string::npos);
    EXPECT_FALSE(parse_size(""));
    EXPECT_FALSE(parse_size("MiB"));
    EXPECT_FALSE(parse_size("1e9MiB"));
    EXPECT_FALSE(parse_size("99999999999TiB"));
}

TEST(ParseSizeOrPercent, Percentages) {
    auto p = parse_size_or_percent("5%");
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->is_percent);
    EXPECT_DOUBLE_EQ(p->percent, 5.0);
    EXPECT_EQ(p->resolve(1000ull << 20), 50ull << 20);
    EXPECT_TRUE(parse_size_or_percent("0.5%"));
    EXPECT_FALSE(parse_size_or_percent("0%"));
    EXPECT_FALSE(parse_size_or_percent("100%"));
    EXPECT_FALSE(parse_size_or_percent("150%"));
    EXPECT_FALSE(parse_size_or_percent("-1%"));
    EXPECT_FALSE(parse_size_or_percent("5 MiB%"));
    auto bare = parse_size_or_percent("5");
    ASSERT_FALSE(bare);
    EXPECT_NE(bare.error().message.find("\"5%\""), std::string::npos) << bare.error().message;
    auto sz = parse_size_or_percent("350MiB");
    ASSERT_TRUE(sz);
    EXPECT_FALSE(sz->is_percent);
    EXPECT_EQ(sz->resolve(1), 350ull << 20);
}

TEST(ParseDuration, Units) {
    EXPECT_EQ(*parse_duration("500ms"), 500ms);
    EXPECT_EQ(*parse_duration("2s"), 2s);
    EXPECT_EQ(*parse_duration("1.5s"), 1500ms);
    EXPECT_EQ(*parse_duration("250us"), 250us);
    EXPECT_EQ(*parse_duration("2min"), 120s);
    EXPECT_EQ(*parse_duration("1h"), 3600s);
    auto bare = parse_duration("500");
    ASSERT_FALSE(bare);
    EXPECT_NE(bare.error().message.find("\"500ms\""), std::string::npos);
    EXPECT_FALSE(parse_duration("5m"));  // ambiguous: minutes or milli? say min or ms
    EXPECT_FALSE(parse_duration("-1s"));
    EXPECT_FALSE(parse_duration("s"));
}

TEST(ParseRate, Rates) {
    EXPECT_EQ(*parse_rate("4GiB/s"), 4ull << 30);
    EXPECT_EQ(*parse_rate("500 MiB/s"), 500ull << 20);
    EXPECT_FALSE(parse_rate("4GiB"));
    EXPECT_FALSE(parse_rate("4/s"));
}

TEST(FormatBytes, Readable) {
    EXPECT_EQ(format_bytes(350ull << 20), "350 MiB");
    EXPECT_EQ(format_bytes(5476083302ull), "5.1 GiB");
    EXPECT_EQ(format_bytes(17), "17 B");
    EXPECT_EQ(format_bytes(1536), "1.5 KiB");
    // Round trip through the parser.
    EXPECT_EQ(*parse_size(format_bytes(350ull << 20)), 350ull << 20);
}

TEST(FormatDuration, Readable) {
    EXPECT_EQ(format_duration(250ms), "250ms");
    EXPECT_EQ(format_duration(1500ms), "1.5s");
    EXPECT_EQ(format_duration(125s), "2min 5s");
    EXPECT_EQ(format_duration(40us), "40us");
    EXPECT_EQ(*parse_duration(format_duration(250ms)), 250ms);
}

// Issue 10, 11: meminfo's own unit and Kubernetes' binary suffixes. All binary:
// meminfo's "kB" is KiB, and the single letters keep their systemd meaning.
TEST(ParseSize, MeminfoAndKubernetesUnits) {
    EXPECT_EQ(*parse_size("358400 kB"), 350ull << 20);  // as /proc/meminfo writes it
    EXPECT_EQ(*parse_size("512Ki"), 512ull << 10);
    EXPECT_EQ(*parse_size("350Mi"), 350ull << 20);
    EXPECT_EQ(*parse_size("2Gi"), 2ull << 30);
    EXPECT_EQ(*parse_size("1Ti"), 1ull << 40);
    EXPECT_EQ(*parse_size("1.5Gi"), 3ull << 29);
    EXPECT_EQ(*parse_size("100k"), 100ull << 10);
    EXPECT_EQ(*parse_size("2M"), 2ull << 20);
    EXPECT_EQ(parse_size_or_percent("350Mi")->bytes, 350ull << 20);
    EXPECT_EQ(*parse_rate("16Gi/s"), 16ull << 30);
    // Still unknown: the error lists what works.
    auto bad = parse_size("5Pi");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("Ki/Mi/Gi"), std::string::npos) << bad.error().message;
    EXPECT_FALSE(parse_size("5mi"));
}

// Issue 17: format_bytes() no longer goes through printf's floating point; the
// text is the same as the old "%.1f %s" / "%.0f %s" of the double.
TEST(Units, FormatBytesMatchesPrintfOfTheDouble) {
    auto reference = [](uint64_t bytes) {
        static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = static_cast<double>(bytes);
        int i = 0;
        while (v >= 1024.0 && i < 4) {
            v /= 1024.0;
            ++i;
        }
        char buf[64];
        if (i == 0)
            std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
        else
            std::snprintf(buf, sizeof buf, v < 10.0 ? "%.1f %s" : "%.0f %s", v, kNames[i]);
        return std::string(buf);
    };
    std::vector<uint64_t> values = {0,
                                    1,
                                    9,
                                    1023,
                                    1024,
                                    1025,
                                    1535,
                                    1536,
                                    1537,
                                    10239,
                                    10240,
                                    10752,
                                    (1ull << 20) - 1,
                                    1ull << 20,
                                    350ull << 20,
                                    5476083302ull};
    // Around every unit boundary and rounding tie (x.x5 and x.5 of each unit).
    for (unsigned shift = 10; shift <= 40; shift += 10)
        for (uint64_t m = 1; m <= 1100; ++m)
            for (int64_t d : {-1, 0, 1}) {
                values.push_back((m << shift) / 20 +
                                 static_cast<uint64_t>(d));                     // multiples of 0.05
                values.push_back((m << shift) / 2 + static_cast<uint64_t>(d));  // multiples of 0.5
            }
    uint64_t x = 88172645463325252ull;  // xorshift: values of every size
    for (int k = 0; k < 200000; ++k) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        values.push_back(x >> (x % 24 + 16));
    }
    for (uint64_t v : values) ASSERT_EQ(format_bytes(v), reference(v)) << v;
    char small[4];
    EXPECT_EQ(format_bytes(350ull << 20, small, sizeof small), 3u);
    EXPECT_STREQ(small, "350");
}
