#include <gtest/gtest.h>

#include "sensors/psi.hpp"

using namespace oomguard;

TEST(Psi, ParsesSomeAndFull) {
    auto v = parse_psi(
        "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n"
        "full avg10=0.10 avg60=0.00 avg300=0.00 total=42\n");
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_DOUBLE_EQ(v->some.avg10, 1.5);
    EXPECT_DOUBLE_EQ(v->some.avg60, 0.25);
    EXPECT_EQ(v->some.total_us, 123456u);
    ASSERT_TRUE(v->has_full);
    EXPECT_EQ(v->full.total_us, 42u);
}

TEST(Psi, SomeOnlyCpuStyle) {
    auto v = parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    ASSERT_TRUE(v);
    EXPECT_FALSE(v->has_full);
}

TEST(Psi, Malformed) {
    EXPECT_FALSE(parse_psi(""));
    EXPECT_FALSE(parse_psi("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"));
    EXPECT_FALSE(parse_psi("some avg10=x avg60=0.00 avg300=0.00 total=0\n"));
    EXPECT_FALSE(parse_psi("some avg10=0.00 total=0\n"));
    EXPECT_FALSE(parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=-\n"));
}

TEST(PsiTrigger, MissingPressureFileIsAnError) {
    PsiTrigger t;
    Status st = t.open("/nonexistent", std::chrono::milliseconds(20), std::chrono::milliseconds(500));
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("/nonexistent/pressure/memory"), std::string::npos);
    EXPECT_EQ(t.fd(), -1);
}
