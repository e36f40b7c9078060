// Drop-ins (/etc/oomguard.d/*.toml next to /etc/oomguard.toml) and the levels
// --check-config resolves for a host.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.hpp"
#include "support/files.hpp"

using namespace oomguard;
using namespace std::chrono_literals;

namespace {

class Dropins : public ::testing::Test {
protected:
    void write(const std::string& path, const std::string& text, unsigned mode = 0644) {
        test::write_file(path, text);
        ::chmod(path.c_str(), mode);
    }
    std::string errors(const ConfigLoad& l) {
        std::string all;
        for (const auto& e : l.errors) all += e.to_string(main_) + "\n";
        return all;
    }
    test::TempDir tmp_;  // removed with everything in it after each test
    std::string dir_ = tmp_.path(), main_ = dir_ + "/oomguard.toml",
                dropins_ = dir_ + "/oomguard.d";
};

}  // namespace

TEST(DropinDir, NextToTheMainFile) {
    EXPECT_EQ(dropin_dir_for("/etc/oomguard.toml"), "/etc/oomguard.d");
    EXPECT_EQ(dropin_dir_for("/srv/x/node.conf"), "/srv/x/node.conf.d");
}

TEST_F(Dropins, NoDirectoryIsOnlyTheMainFile) {
    write(main_, "[memory]\nmin_available = \"400MiB\"\n");
    ConfigLoad l = load_config(main_);
    ASSERT_TRUE(l.config) << errors(l);
    EXPECT_EQ(l.config->memory.min_available.bytes, 400ull << 20);
    EXPECT_EQ(l.config->sources, std::vector<std::string>{main_});
}

TEST_F(Dropins, MergedInLexicalOrderKeyByKey) {
    write(main_, "[memory]\nmin_available = \"400MiB\"\n[action]\nrepeat_after = \"2s\"\n");
    write(dropins_ + "/20-b.toml", "[memory]\nmin_available = \"600MiB\"\n");
    write(dropins_ + "/10-a.toml",
          "[memory]\nmin_available = \"500MiB\"\n[action]\nmode = \"dry-run\"\n");
    write(dropins_ + "/README", "not toml, not read\n");
    write(dropins_ + "/30-c.toml.dpkg-old", "garbage =\n");
    write(dropins_ + "/.hidden.toml", "garbage =\n");
    ConfigLoad l = load_config(main_);
    ASSERT_TRUE(l.config) << errors(l);
    const Config& c = *l.config;
    EXPECT_EQ(c.memory.min_available.bytes, 600ull << 20);  // 20-b.toml comes last
    EXPECT_EQ(c.action.mode, ActionMode::DryRun);           // 10-a.toml, not overridden
    EXPECT_EQ(c.action.repeat_after, 2s);                   // the main file, not overridden
    EXPECT_EQ(c.sources,
              (std::vector<std::string>{main_, dropins_ + "/10-a.toml", dropins_ + "/20-b.toml"}));
    EXPECT_EQ(c.key_origins.at("memory.min_available").file, dropins_ + "/20-b.toml");
    EXPECT_EQ(c.key_origins.at("memory.min_available").line, 2);
}

TEST_F(Dropins, EveryErrorNamesItsFileAndLine) {
    write(main_, "[memory]\nmin_available = 350\n");
    write(dropins_ + "/10-a.toml", "\n\n[poll]\nnot_a_key = true\n");
    write(dropins_ + "/20-b.toml", "[memory\n");
    ConfigLoad l = load_config(main_);
    ASSERT_FALSE(l.config);
    const std::string all = errors(l);
    ASSERT_EQ(l.errors.size(), 3u) << all;
    EXPECT_EQ(
        l.errors[0].to_string(main_).rfind(main_ + ":2: memory.min_available: a bare number", 0),
        0u)
        << all;
    EXPECT_EQ(l.errors[1].to_string(main_), dropins_ + "/10-a.toml:4: poll.not_a_key: unknown key");
    EXPECT_EQ(l.errors[2].to_string(main_).rfind(dropins_ + "/20-b.toml:1: TOML syntax error", 0),
              0u)
        << all;
}

TEST_F(Dropins, ChecksBetweenKeysNameTheFileThatSetTheKey) {
    write(main_, "[memory]\nmin_available = \"1GiB\"\n");
    write(dropins_ + "/50-warn.toml", "# fleet\n[memory]\nwarn_available = \"512MiB\"\n");
    ConfigLoad l = load_config(main_);
    ASSERT_EQ(l.errors.size(), 1u) << errors(l);
    EXPECT_EQ(
        l.errors[0].to_string(main_).rfind(dropins_ + "/50-warn.toml:3: memory.warn_available", 0),
        0u)
        << errors(l);
    // Against MemTotal, too.
    write(dropins_ + "/50-warn.toml", "[memory]\nmin_available = \"8GiB\"\n");
    l = load_config(main_);
    ASSERT_TRUE(l.config) << errors(l);
    auto e = check_against_mem_total(*l.config, 4ull << 30);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].to_string(main_).rfind(dropins_ + "/50-warn.toml:2: memory.min_available", 0),
              0u)
        << e[0].to_string(main_);
}

TEST_F(Dropins, InsecureDropinsAreRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (a root-owned directory)";
    write(main_, "");
    write(dropins_ + "/10-a.toml", "[action]\nmode = \"dry-run\"\n", 0666);
    ConfigLoad l = load_config(main_);
    ASSERT_FALSE(l.config);
    EXPECT_NE(
        errors(l).find(dropins_ + "/10-a.toml: refusing config file: it is writable by others"),
        std::string::npos)
        << errors(l);
    ::chmod((dropins_ + "/10-a.toml").c_str(), 0644);
    ::chmod(dropins_.c_str(), 0777);
    l = load_config(main_);
    ASSERT_FALSE(l.config);
    EXPECT_NE(
        errors(l).find(dropins_ + ": refusing the drop-in directory: it is writable by others"),
        std::string::npos)
        << errors(l);
    EXPECT_TRUE(load_config(main_, {true}).config);  // --allow-insecure-config
}

TEST_F(Dropins, InjectedDirectory) {
    write(main_, "");
    write(dir_ + "/elsewhere/10-a.toml", "[action]\nmode = \"dry-run\"\n");
    ConfigLoad plain = load_config(main_);
    ASSERT_TRUE(plain.config) << errors(plain);
    EXPECT_EQ(plain.config->action.mode, ActionMode::Sysrq);
    ConfigLoad injected = load_config(main_, {false, dir_ + "/elsewhere"});
    ASSERT_TRUE(injected.config) << errors(injected);
    EXPECT_EQ(injected.config->action.mode, ActionMode::DryRun);
}

// --check-config's "# min_available = 5% = 1.2 GiB of MemTotal 24 GiB".
TEST(ResolvedLevels, EachLevelAsTheHostResolvesIt) {
    ConfigLoad l =
        parse_config("[memory]\nmin_available = \"5%\"\nwarn_available = \"2GiB\"\n", "t.toml");
    ASSERT_TRUE(l.config);
    const uint64_t total = 24ull << 30;
    ResolvedLevels r = describe_levels(*l.config, total, total / 20, 2ull << 30, 2ull << 30);
    ASSERT_EQ(r.lines.size(), 3u);
    EXPECT_EQ(r.lines[0], "# min_available = 5% = 1.2 GiB of MemTotal 24 GiB");
    EXPECT_EQ(r.lines[1], "# warn_available = 2.0 GiB = 8.3% of MemTotal 24 GiB");
    EXPECT_EQ(r.lines[2],
              "# recover_available: unset: warn_available = 2.0 GiB of MemTotal 24 GiB");
    EXPECT_TRUE(r.warnings.empty());
}

TEST(ResolvedLevels, WarnsAboveAQuarterOfMemTotal) {
    ConfigLoad l = parse_config("[memory]\nmin_available = \"3GiB\"\n", "t.toml");
    ASSERT_TRUE(l.config);
    EXPECT_TRUE(
        describe_levels(*l.config, 16ull << 30, 3ull << 30, 0, 6ull << 30).warnings.empty());
    ResolvedLevels r = describe_levels(*l.config, 8ull << 30, 3ull << 30, 0, 6ull << 30);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_NE(r.warnings[0].find("memory.min_available (3.0 GiB) is 38% of MemTotal 8.0 GiB"),
              std::string::npos)
        << r.warnings[0];
}
